"""CPU time a run has used so far, for telling an idle session from a busy one.

Where the run has a control group that accounts CPU (cgroup v2 ``cpu.stat``, cgroup v1
``cpuacct.usage``) that counts everything it ever ran; otherwise the process tree under
the run's first process is read from ``/proc`` (user plus system time of each live
process, and of the children each has waited for).
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    _, _, rest = text.rpartition(")")
    return rest.split()


def process_tree_cpu(root: int) -> float | None:
    """CPU seconds of ``root`` and its live descendants; None if ``root`` is gone.

    Fields (after the name): 0 state, 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime.
    A child's time moves into its parent's cutime/cstime when it is reaped, so summing
    all four over the live tree counts nothing twice.
    """
    children: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    try:
        entries = [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return None
    for pid in entries:
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 15:
            continue
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = sum(int(value) for value in fields[11:15])
    if root not in times:
        return None
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += times.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / _TICKS


def cgroup_cpu(folder: Path, version: int) -> float | None:
    """CPU seconds a control group accounted, or None where it does not account them."""
    try:
        if version == 2:
            for line in (folder / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        return int((folder / "cpuacct.usage").read_text()) / 1e9
    except (OSError, ValueError):
        return None
