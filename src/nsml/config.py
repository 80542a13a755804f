"""Where OpenNSML keeps its state, shared by the client and the server.

Both sides agree on one folder (``NSML_HOME``) so that the embedded server a CLI call
starts and the CLI calls that follow find each other without any configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

SERVER_FILE = "server.json"
SERVER_LOG = "server.log"
SERVER_LOCK = "server.lock"
CLIENT_FILE = "client.json"  # the server and token `nsml login` chose


def nsml_home() -> Path:
    """The state folder: ``$NSML_HOME`` or ``~/.nsml``."""
    configured = os.environ.get("NSML_HOME")
    home = Path(configured).expanduser() if configured else Path.home() / ".nsml"
    return home.resolve()


def local_user_name() -> str:
    """The owner of records in local mode: the OS user name, made safe for session names."""
    import getpass

    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        name = "user"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return safe or "user"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has ``pid`` (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
