"""Isolation of participant code with bubblewrap (``bwrap``).

Inside the sandbox a process sees the read-only Python environment, its own writable
work dir at ``/nsml/work`` and whatever else its :class:`Mounts` name (the train split,
a checkpoint, the platform's API socket); no ``NSML_HOME``, no other session, no network.

It holds the same whoever runs the server, root included: the process runs as an
unprivileged uid in a user namespace of its own, with no capabilities and no way to
create another user namespace, so the mounts it was given (read-only ones included)
cannot be remounted or removed. What must stay hidden is not bound at all.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nsml.runners.limits import Limits

DEMO_DATA = Path(__file__).resolve().parent.parent / "datasets" / "demo"
WORK = "/nsml/work"
DATA = "/nsml/data"
CHECKPOINT = "/nsml/checkpoint"
API_SOCKET = "/nsml/api.sock"
CACHE = "/nsml/cache"
SANDBOX_UID = 1000  # who the process is inside; it holds no capability there
SANDBOX_USER = "nsml"

_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
)


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True)
class Mounts:
    work: Path
    extra: list[Mount] = field(default_factory=list)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def sandbox_works() -> tuple[bool, str]:
    """Whether bwrap can start a process here (it needs user namespaces or root)."""
    binary = bwrap_path()
    if binary is None:
        return False, "bubblewrap (bwrap) is not installed; install the Debian package 'bubblewrap'"
    probe = [binary, *_base_args(), "--chdir", "/", sys.executable, "-c", "pass"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start: {exc}"
    if result.returncode != 0:
        return False, f"bwrap could not start a process: {result.stderr.strip()[:200]}"
    return True, "bwrap"


def python_paths() -> list[str]:
    """The read-only Python environment: interpreter prefixes and import paths.

    The server's own working directory (``sys.path[0]`` under ``python -m``) is left out.
    """
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), *sys.path[1:]]
    here = os.getcwd()
    resolved = {os.path.realpath(raw) for raw in candidates if raw}
    kept: list[str] = []
    for path in sorted(resolved, key=len):
        if path == here or not os.path.isdir(path) or path.startswith(_SYSTEM):
            continue
        if not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return kept


def _base_args(limits: Limits | None = None, hide: tuple[Path, ...] = ()) -> list[str]:
    limits = limits or Limits()
    args = ["--die-with-parent", "--new-session", "--unshare-all", "--unshare-user"]
    args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--disable-userns"]
    args += ["--cap-drop", "ALL", "--clearenv"]
    for path in _SYSTEM + _ETC:
        args += ["--ro-bind-try", path, path]
    # fresh /proc, /dev and /tmp first, so that Python paths below /tmp stay visible;
    # /tmp and /dev/shm are sized: a tmpfs is RAM, and unsized it may take half the host's
    args += ["--proc", "/proc", "--dev", "/dev"]
    for size, target in ((limits.shm_bytes, "/dev/shm"), (limits.tmp_bytes, "/tmp")):
        args += [*(["--size", str(size)] if size else []), "--tmpfs", target]
    args += ["--dir", "/nsml"]
    hidden = [os.path.realpath(DEMO_DATA), *(os.path.realpath(h) for h in hide)]
    for path in python_paths():  # the package's own demo test labels are never bound
        args += _bind_except(path, hidden)
    return args


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _bind_except(path: str, hidden: list[str]) -> list[str]:
    """Read-only binds of ``path`` that leave out every hidden folder below it.

    A folder holding a hidden one is recreated as an empty read-only folder and its other
    entries bound one by one, down to the hidden folder, which is simply absent."""
    below = [h for h in hidden if _inside(h, path)]
    if not below:
        return ["--ro-bind", path, path]
    if path in below:
        return []
    # a tmpfs of its own, read-only once its entries are bound: a folder made inside a
    # writable mount (/tmp holds the Python environment on some hosts) would stay writable
    args = ["--tmpfs", path]
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        entries = []
    for entry in entries:
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), entry.path]
        elif entry.is_dir():
            args += _bind_except(entry.path, below)
        else:
            args += ["--ro-bind", entry.path, entry.path]
    return [*args, "--remount-ro", path]


def _gpu_devices(gpus: list[str]) -> list[str]:
    """Only the allocated GPUs (and the driver's control devices) enter the sandbox."""
    if not gpus:
        return []
    devices = [f"/dev/nvidia{index}" for index in gpus]
    devices += ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"]
    args: list[str] = []
    for device in devices:
        args += ["--dev-bind-try", device, device]
    return args


def wrap(
    argv: list[str],
    mounts: Mounts,
    env: dict[str, str],
    hide: tuple[Path, ...] = (),
    gpus: list[str] | None = None,
    limits: Limits | None = None,
) -> list[str]:
    """The bwrap command line that runs ``argv`` in ``/nsml/work`` with ``env`` only.

    ``hide`` names host folders (the platform's state) that must stay invisible even if
    they lie inside a bound Python path, say a home directory on ``PYTHONPATH``.
    """
    binary = bwrap_path()
    if binary is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed")
    args = [binary, *_base_args(limits, hide)]
    args += _gpu_devices(gpus or [])
    args += ["--bind", str(mounts.work), WORK]
    for mount in mounts.extra:
        args += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
    # getpass and friends ask the environment first: the sandbox uid has no passwd entry
    for key, value in {"USER": SANDBOX_USER, "LOGNAME": SANDBOX_USER, **env}.items():
        args += ["--setenv", key, value]
    # the skeleton bubblewrap built (folders made for the binds above) is read-only too
    return [*args, "--remount-ro", "/", "--chdir", WORK, "--", *argv]
