"""Runners start and stop session processes; they never touch the store.

A runner reports what happened through :class:`RunnerEvents`, which the server's
session service implements. Backends: :class:`LocalRunner` (subprocesses on this
host, under bubblewrap when it works) and ``ray_cluster.RayRunner`` (actors on a Ray
cluster; imported only when chosen, as Ray is an optional extra). Both start the
process itself through :class:`~nsml.runners.process.ProcessLauncher`.
"""

from nsml.runners.base import Outcome, Runner, RunnerEvents, RunSpec
from nsml.runners.local import LocalRunner

__all__ = ["LocalRunner", "Outcome", "RunSpec", "Runner", "RunnerEvents"]
