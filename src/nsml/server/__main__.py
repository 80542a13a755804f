"""``python -m nsml.server``: run the server in the foreground.

The CLI's embedded mode starts exactly this, detached, with ``--port 0``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

import uvicorn

from nsml.config import local_user_name, nsml_home
from nsml.server.app import create_app
from nsml.server.auth import new_token
from nsml.server.settings import ServerSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nsml.server")
    parser.add_argument("--home", default=None, help="state folder (default: $NSML_HOME or ~/.nsml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db", default="", help="SQLAlchemy URL (default: SQLite in the home)")
    parser.add_argument(
        "--max-concurrent", type=int, default=0, help="parallel sessions (default: CPU cores)"
    )
    args = parser.parse_args(argv)
    serve(
        home=args.home,
        host=args.host,
        port=args.port,
        db_url=args.db,
        max_concurrent=args.max_concurrent,
    )


def serve(home: str | None, host: str, port: int, db_url: str = "", max_concurrent: int = 0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = ServerSettings(
        home=nsml_home() if home is None else Path(home).expanduser().resolve(),
        db_url=db_url,
        host=host,
        port=port,
        local_user=local_user_name(),
    )
    max_concurrent = max_concurrent or int(os.environ.get("NSML_MAX_CONCURRENT", "0") or 0)
    if max_concurrent > 0:
        settings.max_concurrent = max_concurrent
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    settings.port = bound_port
    settings.public_url = f"http://{reachable}:{bound_port}"
    token = os.environ.pop("NSML_SERVER_TOKEN", None) or new_token()
    app = create_app(settings, token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
