"""Finding the server, in this order:

1. ``NSML_SERVER_URL`` and ``NSML_TOKEN`` from the environment;
2. the server and token that ``nsml login`` saved in ``NSML_HOME/client.json`` (0600);
3. the embedded server of ``NSML_HOME``: the first CLI call starts it detached on
   127.0.0.1 (a free port); later calls find it through ``server.json`` (0600), which the
   server writes once it is ready and removes when it stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml.client.api import ApiClient, ApiError
from nsml.config import CLIENT_FILE, SERVER_FILE, SERVER_LOCK, SERVER_LOG, nsml_home
from nsml.config import pid_alive as _pid_alive
from nsml.schemas.system import Health

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ConnectionFailed(RuntimeError):
    """The server could not be reached or started; the message says what to do."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str
    user: str
    embedded: bool
    owner: str = ""  # the owner of new sessions: the user's team, or the user

    @property
    def default_owner(self) -> str:
        return self.owner or self.user

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.token)


def fetch(url: str, token: str, target: Path) -> None:
    """Stream an address the server handed out (a run spec's dataset) to ``target``, as
    ``token``: whoever calls knows no route. ApiError carries the status and detail."""
    with ApiClient(url, token) as api:
        api._stream_to(url, target)  # an absolute address: the client's base is not used


def read_server_file(home: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((home / SERVER_FILE).read_text())
        return info
    except (OSError, ValueError):
        return None


def _probe(url: str, token: str) -> Health | None:
    try:
        with ApiClient(url, token, timeout=5.0) as api:
            return api.health()
    except ApiError:
        return None


def running_server(home: Path) -> tuple[dict[str, Any], Health] | None:
    """(server.json, health) of the live embedded server of ``home``, or None."""
    info = read_server_file(home)
    if not info or not _pid_alive(int(info.get("pid", 0))):
        return None
    health = _probe(info["url"], info["token"])
    return (info, health) if health else None


def read_client_file(home: Path) -> dict[str, Any] | None:
    try:
        saved: dict[str, Any] = json.loads((home / CLIENT_FILE).read_text())
        return saved
    except (OSError, ValueError):
        return None


def write_client_file(home: Path, url: str, token: str, user: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / CLIENT_FILE
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token, "user": user}, handle)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def _remote(url: str, token: str, how: str) -> Connection:
    try:
        with ApiClient(url, token, timeout=5.0) as api:
            health = api.health()
    except ApiError as exc:
        if exc.status in (0, 401, 403):
            raise ConnectionFailed(
                f"the server at {url} does not answer or refuses the token {how}"
            ) from None
        raise ConnectionFailed(f"the server at {url}: {exc.detail}") from None  # e.g. its database is down
    return Connection(url, token, health.user, embedded=False, owner=health.owner)


def connect(start: bool = True) -> Connection:
    url = os.environ.get("NSML_SERVER_URL")
    if url:
        token = os.environ.get("NSML_TOKEN")
        if not token:
            raise ConnectionFailed("NSML_SERVER_URL is set but NSML_TOKEN is not; set both")
        return _remote(url, token, "(NSML_TOKEN)")
    home = nsml_home()
    saved = read_client_file(home)
    if saved:
        return _remote(saved["url"], saved["token"], "saved by `nsml login`; log in again")
    found = running_server(home)
    if found is None:
        if not start:
            raise ConnectionFailed("no server is running; any nsml command starts one")
        found = start_embedded(home)
    info, health = found
    return Connection(info["url"], info["token"], health.user, embedded=True, owner=health.owner)


def start_embedded(home: Path) -> tuple[dict[str, Any], Health]:
    """Start the embedded server detached, unless another CLI call just did."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / SERVER_LOCK).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = running_server(home)
        if found is not None:
            return found
        (home / SERVER_FILE).unlink(missing_ok=True)
        log_path = home / SERVER_LOG
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "nsml.server", "--home", str(home)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "NSML_HOME": str(home)},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise ConnectionFailed(
                    f"the embedded server exited with code {code}: {tail[0]} (see {log_path})"
                )
            info = read_server_file(home)
            if info and info.get("pid") == process.pid:
                health = _probe(info["url"], info["token"])
                if health:
                    return info, health
            time.sleep(0.05)
        process.terminate()
        raise ConnectionFailed(f"the embedded server did not start in {START_TIMEOUT_S:.0f}s; see {log_path}")


def stop_embedded(home: Path) -> bool:
    """Stop the embedded server of ``home``; False when none was running."""
    info = read_server_file(home)
    pid = int(info.get("pid", 0)) if info else 0
    if not pid or not _pid_alive(pid) or not _is_server_of(pid, home):
        (home / SERVER_FILE).unlink(missing_ok=True)  # stale: the pid is gone or now someone else's
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return True
        time.sleep(0.05)
    if _is_server_of(pid, home):  # asked again: a pid is soon reused on a busy host
        os.kill(pid, signal.SIGKILL)
    return True


def _is_server_of(pid: int, home: Path) -> bool:
    """Whether ``pid`` runs the server of ``home`` (``python -m nsml.server --home HOME``).

    server.json outlives a server killed outright, and its pid is soon another process's:
    a CLI, another home's server, a test runner. Only the server it names is signalled."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (not Linux): trust server.json
    if b"nsml.server" not in argv or b"--home" not in argv:
        return False
    given = argv.index(b"--home") + 1
    return given < len(argv) and Path(os.fsdecode(argv[given])).resolve() == home.resolve()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
