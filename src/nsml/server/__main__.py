"""``python -m nsml.server``: run the server in the foreground.

The CLI's embedded mode starts exactly this, detached, with ``--port 0``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from types import FrameType

import uvicorn

from nsml.config import local_user_name, nsml_home
from nsml.runners.gpus import detect_gpus
from nsml.runners.sandbox import sandbox_works
from nsml.server.app import create_app
from nsml.server.auth import new_token
from nsml.server.services.limits import load_limit_settings
from nsml.server.services.server_leases import check_server_id, read_lease_settings
from nsml.server.settings import ServerSettings

KEEP_ALIVE_S = 75  # an idle kept-alive connection stays open this long (nginx's default)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nsml.server")
    parser.add_argument("--home", default=None, help="state folder (default: $NSML_HOME or ~/.nsml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db", default="", help="SQLAlchemy URL (default: SQLite in the home)")
    parser.add_argument(
        "--max-concurrent", type=int, default=0, help="parallel sessions (default: CPU cores)"
    )
    parser.add_argument("--sandbox", default="", help="auto (default), on or off: bubblewrap isolation")
    parser.add_argument(
        "--allow-unsandboxed", action="store_true", help="evaluate submissions even without a sandbox"
    )
    parser.add_argument("--runner", default="", help="local (default) or ray")
    parser.add_argument("--ray-address", default="", help="Ray cluster address for --runner ray")
    parser.add_argument(
        "--public-url", default="", help="URL sessions on other machines reach this server at"
    )
    args = parser.parse_args(argv)
    serve(
        home=args.home,
        host=args.host,
        port=args.port,
        db_url=args.db,
        max_concurrent=args.max_concurrent,
        sandbox_mode=args.sandbox,
        allow_unsandboxed=args.allow_unsandboxed,
        runner=args.runner,
        ray_address=args.ray_address,
        public_url=args.public_url,
    )


def serve(
    home: str | None,
    host: str,
    port: int,
    db_url: str = "",
    max_concurrent: int = 0,
    sandbox_mode: str = "",
    allow_unsandboxed: bool = False,
    runner: str = "",
    ray_address: str = "",
    public_url: str = "",
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = ServerSettings(
        home=nsml_home() if home is None else Path(home).expanduser().resolve(),
        db_url=db_url or os.environ.get("NSML_DB", ""),
        host=host,
        port=port,
        local_user=local_user_name(),
    )
    settings.credits_enforced = os.environ.get("NSML_CREDITS") == "1"
    settings.credit_interval_s = float(os.environ.get("NSML_CREDIT_INTERVAL_S", settings.credit_interval_s))
    settings.gpus = detect_gpus()
    settings.max_gpus_per_session = int(os.environ.get("NSML_MAX_GPUS_PER_SESSION", len(settings.gpus) or 8))
    settings.max_upload_mb = int(os.environ.get("NSML_MAX_UPLOAD_MB", settings.max_upload_mb))
    settings.token_ttl_hours = float(os.environ.get("NSML_TOKEN_TTL_HOURS", settings.token_ttl_hours))
    load_limit_settings(settings, os.environ)
    read_lease_settings(settings, os.environ)
    settings.max_sessions_per_user = _count_setting("NSML_MAX_SESSIONS_PER_USER", 0)
    settings.max_evaluations_per_user = _count_setting("NSML_MAX_EVALUATIONS_PER_USER", 0)
    settings.default_daily_limit = _count_setting("NSML_DEFAULT_DAILY_LIMIT", settings.default_daily_limit)
    read_storage_settings(settings)
    read_artifact_settings(settings)
    check_server_id(settings)
    max_concurrent = max_concurrent or int(os.environ.get("NSML_MAX_CONCURRENT", "0") or 0)
    if max_concurrent > 0:
        settings.max_concurrent = max_concurrent
    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    settings.port = bound_port
    settings.public_url = f"http://{reachable}:{bound_port}"
    settings.public_url = public_url or os.environ.get("NSML_PUBLIC_URL", "") or settings.public_url
    settings.runner = runner or os.environ.get("NSML_RUNNER", "local")
    settings.ray_address = ray_address or os.environ.get("NSML_RAY_ADDRESS", "")
    settings.ray_cpus_per_session = float(os.environ.get("NSML_RAY_CPUS_PER_SESSION", "1"))
    if settings.runner not in ("local", "ray"):
        raise SystemExit(f"error: --runner must be local or ray, not {settings.runner!r}")
    if settings.runner == "ray" and not settings.ray_address:
        raise SystemExit("error: --runner ray needs --ray-address HOST:PORT (the cluster's head node)")
    if settings.runner == "ray":
        problem = ray_cluster_problem(settings.ray_address)
        if problem:
            raise SystemExit(f"error: {problem}")
    if settings.runner == "ray" and reachable == "127.0.0.1" and not public_url and host != "127.0.0.1":
        logging.getLogger("nsml.server").warning(
            "Ray workers reach this server at %s; pass --public-url if they run on other machines",
            settings.public_url,
        )
    sockets = [sock]
    settings.sandbox = sandbox_mode or os.environ.get("NSML_SANDBOX", "auto")
    settings.allow_unsandboxed_eval = allow_unsandboxed or os.environ.get("NSML_ALLOW_UNSANDBOXED") == "1"
    if settings.sandbox not in ("auto", "on", "off"):
        raise SystemExit(f"error: --sandbox must be auto, on or off, not {settings.sandbox!r}")
    if settings.sandbox != "off":
        works, why = sandbox_works()
        if not works and settings.sandbox == "on":
            raise SystemExit(f"error: the sandbox is required (--sandbox on) but {why}")
        if not works and host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(
                f"error: a server others can reach needs the sandbox, but {why}; "
                "install bubblewrap, or pass --sandbox off to run participants' code unconfined"
            )
        settings.sandboxed, settings.sandbox_problem = works, "" if works else why
    else:
        settings.sandbox_problem = "the sandbox is turned off (--sandbox off)"
    if settings.sandboxed:
        socket_dir = Path(tempfile.mkdtemp(prefix="nsml-api-"))
        settings.api_socket = socket_dir / "api.sock"
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(settings.api_socket))
        sockets.append(unix)
    token = os.environ.pop("NSML_SERVER_TOKEN", None) or new_token()
    app = create_app(settings, token)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        # uvicorn's 5 s would close the connection of anyone who looks at `ps` every few
        # seconds just as they use it again; idle connections cost a socket each
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    try:
        _Server(config).run(sockets=sockets)
    finally:
        if settings.api_socket is not None:
            shutil.rmtree(settings.api_socket.parent, ignore_errors=True)


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's bound TCP socket.

    Made with IPPROTO_TCP, not protocol 0: asyncio sets TCP_NODELAY on accepted
    connections only when the listening socket says it is TCP, and without it every
    request after the first on a kept-alive connection waits ~40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _count_setting(name: str, default: int) -> int:
    """A whole number >= 0 from the environment (0 switches the limit off)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise SystemExit(f"error: {name} must be a whole number >= 0 (0: no limit), not {text!r}")
    return int(text)


def _seconds_setting(name: str, default: float) -> float:
    """A number of seconds >= 0 from the environment (0 switches the feature off)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise SystemExit(f"error: {name} must be a number of seconds >= 0 (0: off), not {text!r}")
    return value


def read_storage_settings(settings: ServerSettings) -> None:
    """Quota, unpack cap, evaluation replies and the janitor, from NSML_* variables."""
    settings.storage_quota_mb = _count_setting("NSML_STORAGE_QUOTA_MB", settings.storage_quota_mb)
    settings.max_unpacked_mb = _count_setting("NSML_MAX_UNPACKED_MB", settings.max_unpacked_mb)
    settings.max_source_mb = _count_setting("NSML_MAX_SOURCE_MB", settings.max_source_mb)
    settings.max_download_mb = _count_setting("NSML_MAX_DOWNLOAD_MB", settings.max_download_mb)
    settings.eval_reply_bytes_per_input = _count_setting(
        "NSML_EVAL_REPLY_BYTES_PER_INPUT", settings.eval_reply_bytes_per_input
    )
    settings.max_eval_reply_mb = _count_setting("NSML_MAX_EVAL_REPLY_MB", settings.max_eval_reply_mb)
    settings.janitor_interval_s = _seconds_setting("NSML_JANITOR_INTERVAL_S", settings.janitor_interval_s)
    settings.stale_upload_s = _seconds_setting("NSML_STALE_UPLOAD_S", settings.stale_upload_s)
    settings.stale_env_s = _seconds_setting("NSML_STALE_ENV_S", settings.stale_env_s)
    settings.idle_after_s = _seconds_setting("NSML_IDLE_AFTER_S", settings.idle_after_s)
    settings.auth_cache_s = _seconds_setting("NSML_AUTH_CACHE_S", settings.auth_cache_s)
    if (
        settings.max_unpacked_mb <= 0
        or settings.max_eval_reply_mb <= 0
        or settings.max_source_mb <= 0
        or settings.max_download_mb <= 0
    ):
        raise SystemExit(
            "error: NSML_MAX_UNPACKED_MB, NSML_MAX_SOURCE_MB, NSML_MAX_DOWNLOAD_MB and "
            "NSML_MAX_EVAL_REPLY_MB must be more than 0"
        )


def read_artifact_settings(settings: ServerSettings) -> None:
    """NSML_ARTIFACTS and NSML_S3_ENDPOINT_URL; the bucket must answer before we serve."""
    settings.artifacts_url = os.environ.get("NSML_ARTIFACTS", "").strip()
    settings.s3_endpoint_url = os.environ.get("NSML_S3_ENDPOINT_URL", "").strip()
    if settings.artifacts_url:
        from nsml.artifacts.object_store import open_bucket

        try:
            open_bucket(settings.artifacts_url, settings.s3_endpoint_url, attempts=1)  # fails fast
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        except OSError as exc:
            raise SystemExit(
                f"error: {exc}; check NSML_ARTIFACTS, NSML_S3_ENDPOINT_URL and the AWS credentials"
            ) from None


class _Server(uvicorn.Server):
    """uvicorn, telling the runner at the stop signal, before connections are drained."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.app
        services = getattr(getattr(app, "state", None), "services", None)
        if services is not None:
            services.sessions.runner.stop_starting()
            services.exec_broker.close()  # held `nsml exec` polls answer now, not at the drain timeout
        super().handle_exit(sig, frame)


def ray_cluster_problem(address: str) -> str | None:
    """Why ``--runner ray`` cannot work here, or None; checked before Ray's own long retries."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return "--runner ray needs Ray: pip install 'opennsml[ray]'"
    warm = os.environ.get("NSML_RAY_WARM_ACTORS", "").strip()
    if warm and not warm.isdigit():
        return f"NSML_RAY_WARM_ACTORS={warm!r} is not a whole number of idle actors to keep (0: none)"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return f"--ray-address {address!r} is not HOST:PORT (the Ray head's GCS port, 6379 by default)"
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        return (
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); "
            f"start one with `ray start --head --port={port}` or fix --ray-address"
        )
    return None


if __name__ == "__main__":
    main()
