"""The operator's resource policy: defaults and maxima for what each run may use.

A user asks with NSML's flags (``nsml run --memory 4G --shm-size 1G -c 2``); the server
checks the request against the maxima before storing the session, and turns every
session and evaluation into the :class:`Limits` its runner enforces.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from nsml.runners.limits import Limits
from nsml.server.errors import BadRequest
from nsml.server.settings import ServerSettings
from nsml.sizes import MIB, BadSize, format_size, parse_size
from nsml.store import Session

# environment variable -> (settings field, what it is)
SIZE_SETTINGS = {
    "NSML_DEFAULT_MEMORY": ("default_memory_bytes", "default memory"),
    "NSML_MAX_MEMORY": ("max_memory_bytes", "memory maximum"),
    "NSML_DEFAULT_SHM": ("default_shm_bytes", "default /dev/shm size"),
    "NSML_MAX_SHM": ("max_shm_bytes", "/dev/shm maximum"),
    "NSML_TMP_SIZE": ("tmp_bytes", "/tmp size"),
    "NSML_WORK_QUOTA": ("work_quota_bytes", "work dir quota"),
    "NSML_LOG_LIMIT": ("log_limit_bytes", "log limit"),
    "NSML_EVAL_MEMORY": ("eval_memory_bytes", "evaluation memory"),
}


def load_limit_settings(settings: ServerSettings, environ: Mapping[str, str]) -> None:
    """Read the operator's NSML_* limit variables; a bad one stops the server with one line."""
    for variable, (name, what) in SIZE_SETTINGS.items():
        if environ.get(variable):
            try:
                setattr(settings, name, parse_size(environ[variable], f"{variable} ({what})"))
            except BadSize as exc:
                raise SystemExit(f"error: {exc}") from None
    for variable, name, kind in (
        ("NSML_MAX_PIDS", "max_pids", int),
        ("NSML_DEFAULT_CPUS", "default_cpus", float),
    ):
        if environ.get(variable):
            try:
                value = kind(environ[variable])
                if value < 0:
                    raise ValueError
            except ValueError:
                raise SystemExit(f"error: {variable} must be a number of 0 or more") from None
            setattr(settings, name, value)
    if not settings.max_memory_bytes:
        settings.max_memory_bytes = _host_memory()


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


class LimitPolicy:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    def requested(self, memory: str, shm_size: str) -> tuple[int, int]:
        """``--memory`` and ``--shm-size`` in MiB (0: the default), refused past the maxima."""
        return (
            self._asked("--memory", memory, self.settings.max_memory_bytes),
            self._asked("--shm-size", shm_size, self.settings.max_shm_bytes),
        )

    def _asked(self, flag: str, text: str, maximum: int) -> int:
        if not text:
            return 0
        try:
            size = parse_size(text, flag)
        except BadSize as exc:
            raise BadRequest(str(exc)) from None
        if size < MIB:
            raise BadRequest(f"{flag} {text} is below 1 MiB; give a size like 512M or 4G")
        if maximum and size > maximum:
            raise BadRequest(f"{flag} {text} is more than this server allows ({format_size(maximum)})")
        return size // MIB

    def for_session(self, session: Session) -> Limits:
        return self._limits(session.memory_mb, session.shm_mb, session.cpus)

    def for_evaluation(self, session: Session) -> Limits:
        """An evaluation gets the operator's evaluation memory and its session's CPUs."""
        return replace(self.for_session(session), memory_bytes=self.settings.eval_memory_bytes)

    def defaults(self) -> Limits:
        """What a session gets when it asks for nothing, for ``nsml server status``."""
        return self._limits(0, 0, 0)

    def _limits(self, memory_mb: int, shm_mb: int, cpus: int) -> Limits:
        s = self.settings
        return Limits(
            memory_bytes=memory_mb * MIB if memory_mb else s.default_memory_bytes,
            shm_bytes=shm_mb * MIB if shm_mb else s.default_shm_bytes,
            tmp_bytes=s.tmp_bytes,
            cpus=float(cpus) if cpus else s.default_cpus,
            cpu_weight=float(cpus or 1),
            pids=s.max_pids,
            disk_bytes=s.work_quota_bytes,
            log_bytes=s.log_limit_bytes,
        )
