"""What one session or evaluation may use: memory, CPUs, processes, disk, log.

The server decides a :class:`Limits` for every run (from the flags a user gave and the
operator's defaults and maxima) and the launcher of whatever host runs it enforces it
there, with the best means that host offers (see :mod:`nsml.runners.cgroups`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nsml.sizes import GIB, MIB, format_size


@dataclass(frozen=True)
class Limits:
    """Zero means "not limited" for every field."""

    memory_bytes: int = 0  # RAM (and swap) of every process of the run together
    shm_bytes: int = 64 * MIB  # /dev/shm, a tmpfs (DataLoader workers share tensors there)
    tmp_bytes: int = 1 * GIB  # /tmp, a tmpfs counted in the memory limit as well
    cpus: float = 0.0  # CPU time per wall second, as a number of cores (a hard cap)
    cpu_weight: float = 1.0  # the share of busy CPUs against other runs (cores asked for)
    pids: int = 0  # processes and threads
    disk_bytes: int = 0  # what the work dir may hold
    log_bytes: int = 0  # the log; past it the rest of the output is discarded

    def describe(self) -> dict[str, str]:
        """The limits as a person reads them, for ``server status`` and logs."""
        return {
            "memory": format_size(self.memory_bytes) if self.memory_bytes else "none",
            "shm": format_size(self.shm_bytes),
            "tmp": format_size(self.tmp_bytes),
            "cpus": f"{self.cpus:g}" if self.cpus else "none",
            "pids": str(self.pids) if self.pids else "none",
            "disk": format_size(self.disk_bytes) if self.disk_bytes else "none",
            "log": format_size(self.log_bytes) if self.log_bytes else "none",
        }
