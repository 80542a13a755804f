"""Runners start and stop session processes; they never touch the store.

A runner reports what happened through :class:`RunnerEvents`, which the server's
session service implements. Backends: :class:`LocalRunner` (subprocesses on this
host); sandboxed and Ray backends implement the same :class:`Runner` interface.
"""

from nsml.runners.base import Outcome, Runner, RunnerEvents, RunSpec
from nsml.runners.local import LocalRunner

__all__ = ["LocalRunner", "Outcome", "RunSpec", "Runner", "RunnerEvents"]
