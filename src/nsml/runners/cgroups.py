"""Enforcing :class:`Limits` on this host: cgroup v2, cgroup v1, or rlimits.

A run's processes join its own control group before the run's first instruction (the
child writes to ``cgroup.procs`` between fork and exec), so nothing it starts escapes.
Every group lives below one folder per server process (``nsml-<pid>``) inside the
server's own group, which keeps the host's limits on the server above the sessions'.
Groups are removed when their run ends, and folders left by a server that died are
removed by the next one.

cgroup v2 needs a subtree the server may write to with the ``memory`` and ``pids``
controllers available (a systemd unit with ``Delegate=yes``, a container's root, or
``NSML_CGROUP_ROOT``); cgroup v1 needs the ``memory``/``pids``/``cpu`` hierarchies
writable (root). Where neither is possible, rlimits are the last resort.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from nsml.runners.cputime import cgroup_cpu
from nsml.runners.limits import Limits

CGROUP_MOUNT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
_CONTROLLERS = ("memory", "pids", "cpu")


class Confinement:
    """One run's control groups: what its child joins, how it ended, and the clean-up."""

    def __init__(self, folders: dict[str, Path], version: int) -> None:
        self.folders = folders  # controller -> folder (v2: the same folder for all)
        self.version = version
        self.join_files = sorted({str(f / "cgroup.procs").encode() for f in folders.values()})

    def _read(self, controller: str, name: str) -> str:
        try:
            return (self.folders[controller] / name).read_text()
        except (KeyError, OSError):
            return ""

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for its memory limit."""
        text = self._read("memory", "memory.events" if self.version == 2 else "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def cpu_seconds(self) -> float | None:
        """CPU time of everything the run ran, where its groups account it (v2 always; v1
        when ``cpuacct`` is mounted with ``cpu``); None otherwise."""
        folder = self.folders.get("cpu") or (self.folders.get("memory") if self.version == 2 else None)
        return cgroup_cpu(folder, self.version) if folder is not None else None

    def pids(self) -> list[int]:
        folder = self.folders.get("pids") or next(iter(self.folders.values()), None)
        return [] if folder is None else _procs(folder)

    def kill_all(self) -> None:
        """SIGKILL whatever of the run is left (a daemon it forked, say)."""
        if self.version == 2:
            kill = next(iter(self.folders.values())) / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                except OSError:
                    pass
        for _ in range(500):
            left = self.pids()
            if not left:
                return
            _kill(left)
            time.sleep(0.002)

    def remove(self) -> None:
        """Kill what is left and delete the groups (a group with processes cannot go)."""
        self.kill_all()
        for folder in set(self.folders.values()):
            _remove_tree(folder)


def _remove_tree(folder: Path) -> None:
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.is_dir():
            _remove_tree(child)
    for _ in range(500):  # processes that were just killed take a moment to leave (~1 s at most)
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill(_procs(folder))
            time.sleep(0.002)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _procs(folder: Path) -> list[int]:
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


class Enforcer(ABC):
    """How this host enforces limits; one per process, chosen by :func:`enforcer`."""

    name: str

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """For each limit, what enforces it here (``nsml server status``)."""

    def confine(self, limits: Limits) -> Confinement | None:
        """New control groups for one run, or None when this host has none to give."""
        return None

    def rlimits(self, limits: Limits) -> list[tuple[int, int]]:
        """(resource, value) pairs the child sets on itself before exec."""
        values = [(resource.RLIMIT_CORE, 0)]
        if limits.disk_bytes:  # no single file beyond the quota between two usage checks
            values.append((resource.RLIMIT_FSIZE, limits.disk_bytes))
        return values

    def _common(self) -> dict[str, str]:
        return {
            "disk": "RLIMIT_FSIZE per file and the work dir's usage checked every 2 s",
            "tmp": "a sized tmpfs at /tmp in the sandbox",
            "shm": "a sized tmpfs at /dev/shm in the sandbox",
            "log": "the server writes at most the cap, then one line saying the log was cut",
        }


class RlimitEnforcer(Enforcer):
    """No control groups to be had: per-process rlimits, coarse but better than nothing."""

    name = "rlimit"

    def __init__(self, why: str) -> None:
        self.why = why

    def describe(self) -> dict[str, str]:
        return {
            "memory": "RLIMIT_AS (address space per process; " + self.why + ")",
            "pids": "RLIMIT_NPROC (per user, not enforced for root)",
            "cpus": "not enforced (OMP_NUM_THREADS only)",
            **self._common(),
        }

    def rlimits(self, limits: Limits) -> list[tuple[int, int]]:
        values = super().rlimits(limits)
        if limits.memory_bytes:
            values.append((resource.RLIMIT_AS, limits.memory_bytes))
        if limits.pids and os.geteuid() != 0:
            values.append((resource.RLIMIT_NPROC, limits.pids))
        return values


class _CgroupEnforcer(Enforcer):
    version: int

    def __init__(self, bases: dict[str, Path]) -> None:
        self.bases = bases  # controller -> this server's folder (nsml-<pid>)

    def confine(self, limits: Limits) -> Confinement:
        name = f"run-{uuid.uuid4().hex[:12]}"
        folders = {controller: base / name for controller, base in self.bases.items()}
        created: list[Path] = []
        try:
            for folder in dict.fromkeys(folders.values()):
                folder.mkdir()
                created.append(folder)
            self._apply(folders, limits)
        except OSError:
            for folder in created:
                _remove_tree(folder)
            raise
        return Confinement(folders, self.version)

    @abstractmethod
    def _apply(self, folders: dict[str, Path], limits: Limits) -> None: ...


class CgroupV2Enforcer(_CgroupEnforcer):
    name = "cgroup2"
    version = 2

    def describe(self) -> dict[str, str]:
        cpu = (
            "cgroup v2 cpu.weight and cpu.max" if "cpu" in self.bases else "not enforced (no cpu controller)"
        )
        return {"memory": "cgroup v2 memory.max", "pids": "cgroup v2 pids.max", "cpus": cpu, **self._common()}

    def _apply(self, folders: dict[str, Path], limits: Limits) -> None:
        folder = folders["memory"]
        if limits.memory_bytes:
            (folder / "memory.max").write_text(str(limits.memory_bytes))
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
        if limits.pids:
            (folder / "pids.max").write_text(str(limits.pids))
        if "cpu" in folders:
            (folder / "cpu.weight").write_text(str(max(1, min(10000, int(100 * limits.cpu_weight)))))
            if limits.cpus:
                (folder / "cpu.max").write_text(f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")


class CgroupV1Enforcer(_CgroupEnforcer):
    name = "cgroup1"
    version = 1

    def describe(self) -> dict[str, str]:
        def by(controller: str, knob: str) -> str:
            return (
                f"cgroup v1 {knob}"
                if controller in self.bases
                else f"not enforced (no {controller} hierarchy)"
            )

        return {
            "memory": by("memory", "memory.limit_in_bytes"),
            "pids": by("pids", "pids.max"),
            "cpus": by("cpu", "cpu.shares and cpu.cfs_quota_us"),
            **self._common(),
        }

    def rlimits(self, limits: Limits) -> list[tuple[int, int]]:
        values = super().rlimits(limits)
        if limits.memory_bytes and "memory" not in self.bases:
            values.append((resource.RLIMIT_AS, limits.memory_bytes))
        return values

    def _apply(self, folders: dict[str, Path], limits: Limits) -> None:
        if limits.memory_bytes and "memory" in folders:
            memory = folders["memory"]
            (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # RAM plus swap: the same, so the run cannot swap past it
                swap.write_text(str(limits.memory_bytes))
        if limits.pids and "pids" in folders:
            (folders["pids"] / "pids.max").write_text(str(limits.pids))
        if "cpu" in folders:
            cpu = folders["cpu"]
            (cpu / "cpu.shares").write_text(str(max(2, int(1024 * limits.cpu_weight))))
            if limits.cpus:
                (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * CPU_PERIOD_US)))


# detection ------------------------------------------------------------------------------
def _own_groups() -> dict[str, str]:
    """controller (or "" for the unified hierarchy) -> this process's group path."""
    groups: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _v1_mounts() -> dict[str, Path]:
    """controller -> mount point of its v1 hierarchy."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(extra) < 3 or extra[0] != "cgroup":
            continue
        options = extra[2].split(",")
        for controller in _CONTROLLERS:
            if controller in options and controller not in found:
                found[controller] = Path(fields[4])
    return found


def _v2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return Path(left.split()[4])
    return None


def _claim(parent: Path) -> Path:
    """This server's folder below ``parent``, after removing those of dead servers."""
    for stale in parent.glob("nsml-*"):
        pid = stale.name.removeprefix("nsml-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_tree(stale)
    base = parent / f"nsml-{os.getpid()}"
    base.mkdir(exist_ok=True)
    return base


def _try_v2(root: Path | None) -> CgroupV2Enforcer | None:
    if root is None:
        mount = _v2_mount()
        if mount is None:
            return None
        root = mount / _own_groups().get("", "/").lstrip("/")
    available = (
        set((root / "cgroup.controllers").read_text().split())
        if (root / "cgroup.controllers").exists()
        else set()
    )
    if not {"memory", "pids"} <= available:
        return None
    wanted = [c for c in _CONTROLLERS if c in available]
    enable = " ".join(f"+{c}" for c in wanted)
    subtree = root / "cgroup.subtree_control"
    if not set(wanted) <= set(subtree.read_text().split()):
        # no processes may sit in a group that hands controllers down: move ours to a leaf
        leaf = root / "nsml-server"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        subtree.write_text(enable)
    base = _claim(root)
    (base / "cgroup.subtree_control").write_text(enable)
    return CgroupV2Enforcer(dict.fromkeys(wanted, base))


def _try_v1() -> CgroupV1Enforcer | None:
    mounts, own = _v1_mounts(), _own_groups()
    bases: dict[str, Path] = {}
    for controller, mount in mounts.items():
        parent = mount / own.get(controller, "/").lstrip("/")
        try:
            bases[controller] = _claim(parent)
        except OSError:
            continue
    if "memory" not in bases:
        for base in bases.values():
            _remove_tree(base)
        return None
    return CgroupV1Enforcer(bases)


@functools.cache
def enforcer() -> Enforcer:
    """The best way this host offers, tried once per process."""
    configured = os.environ.get("NSML_CGROUP_ROOT")
    problems: list[str] = []
    try:
        found = _try_v2(Path(configured) if configured else None)
        if found is not None:
            return found
    except OSError as exc:
        problems.append(f"cgroup v2: {exc.strerror or exc}")
    if not configured:
        try:
            found_v1 = _try_v1()
            if found_v1 is not None:
                return found_v1
        except OSError as exc:
            problems.append(f"cgroup v1: {exc.strerror or exc}")
    return RlimitEnforcer("; ".join(problems) or "no writable cgroup with a memory controller")


def release() -> None:
    """Remove this server's folders (at shutdown, once every run ended)."""
    found = enforcer()
    if isinstance(found, _CgroupEnforcer):
        for base in set(found.bases.values()):
            _remove_tree(base)
