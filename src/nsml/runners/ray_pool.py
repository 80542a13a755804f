"""Warm :class:`~nsml.runners.ray_worker.SessionHost` actors, reused across runs.

Why: starting a Ray actor costs a worker process (~1-1.5 s on a busy machine, plus the
wait for its resources to come back after the previous one was killed), which made short
sessions on Ray several times slower than on the local runner. An actor is only a
launcher (each run still gets its own sandboxed process, control groups and fresh
folder), so one whose run ended cleanly can take the next run of the same resource
shape (CPUs, GPUs) at once.

Idle actors hold their CPUs and GPUs, so the pool gives them up whenever another shape
needs room: a run that finds no idle actor of its shape retires the idle actors of the
other shapes before its new actor asks Ray for a node, and an actor freed while a run of
another shape waits is retired rather than kept. A run whose new actor still waits for a
node is handed the first actor of its shape that frees up (its own, which never ran
anything, becomes a spare for the next run). At most ``NSML_RAY_WARM_ACTORS`` idle
actors are kept (default: the cluster's CPUs; 0 turns the pool off);
:meth:`WarmActors.close` retires them all at shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nsml.runners.ray_evaluation import CALL_TIMEOUT_S
from nsml.runners.ray_worker import HostedRun

log = logging.getLogger("nsml.ray")
Shape = tuple[float, int]  # (CPUs, GPUs) one actor reserves
RETIRE_TIMEOUT_S = 10.0
WAIT_STEP_S = 0.1  # how often a run waiting for a node looks for a warm actor handed to it
ANNOUNCE_AFTER_S = 1.0  # a node's new worker process starts in about this long


@dataclass
class Lease:
    """One run's claim on an actor: ``actor`` (warm when it ran a run before), or one not
    yet known to have a node (``ready`` answers once it has), to which the pool may hand a
    freed warm actor meanwhile (``handed``)."""

    shape: Shape
    actor: Any
    warm: bool
    ready: Any = None
    handed: Any = None


class WarmActors:
    """Idle actors per shape; see the module docstring for the rules.

    Besides idle actors the pool keeps spares: actors that were created for a run but not
    used by it (a warm actor was handed over first, or the run was stopped or taken back
    while it waited). A spare never ran anything; the next run of its shape takes it, so
    at most about one actor per shape waits for a node and none is started only to be
    killed."""

    def __init__(self, new_actor: Callable[[float, int], Any], capacity: Callable[[], int]) -> None:
        self._new_actor = new_actor
        self._capacity = capacity
        self._idle: dict[Shape, list[Any]] = {}
        self._spares: dict[Shape, list[tuple[Any, Any]]] = {}  # (actor, its ready() reference)
        self._waiting: list[Lease] = []  # runs whose actor may still wait for a node, oldest first
        self._lock = threading.Lock()
        self._closing = False

    def prewarm(self, shape: Shape, count: int) -> None:
        """Start ``count`` spares of the shape most runs have, so the first runs start warm."""
        with self._lock:
            for _ in range(count):
                actor = self._new_actor(*shape)
                self._spares.setdefault(shape, []).append((actor, actor.ready.remote()))

    def take(self, shape: Shape, fresh: bool = False) -> Lease:
        """A warm actor of ``shape`` if one is idle; else a spare or a new one, which may
        wait for a node. ``fresh``: a new one, whatever the pool holds."""
        with self._lock:
            idle = self._idle.get(shape)
            if idle and not fresh:
                return Lease(shape, idle.pop(), warm=True)
            spares = self._spares.get(shape)
            if spares and not fresh:
                actor, ready = spares.pop()
            else:
                actor = self._new_actor(*shape)
                ready = actor.ready.remote()
            others = self._take_idle(lambda s: s != shape)
            others_spare = [a for s in list(self._spares) if s != shape for a, _ in self._spares.pop(s)]
            lease = Lease(shape, actor, warm=False, ready=ready)
            self._waiting.append(lease)
        for spare in others_spare:  # never started: nothing to clean
            _kill(spare)
        self._retire_all(others)  # their resources may be what this actor waits for
        return lease

    def acquire(self, lease: Lease, gone: Callable[[], bool], waiting: Callable[[], None]) -> Any:
        """Wait until the lease's run may start and return its actor; None (the lease
        cancelled) once ``gone()`` says it will not start. ``waiting`` is called once if the
        wait lasts longer than a worker's start-up."""
        announce_at = time.monotonic() + ANNOUNCE_AFTER_S
        while not lease.warm and not self._can_start(lease):
            if gone():
                self.cancel(lease)
                return None
            if announce_at and time.monotonic() > announce_at:
                announce_at = 0.0
                waiting()
        return self.placed(lease)

    def _can_start(self, lease: Lease) -> bool:
        """Whether a warm actor was handed over, or its actor or a spare of its shape (which
        then trades places with it) has a node; waits up to ``WAIT_STEP_S``."""
        import ray

        if lease.handed is not None:
            return True
        with self._lock:
            spares = list(self._spares.get(lease.shape, []))
        done, _ = ray.wait([lease.ready, *(ready for _, ready in spares)], timeout=WAIT_STEP_S)
        if not done:
            return lease.handed is not None
        first = done[0].hex()
        if first == lease.ready.hex():
            return True
        with self._lock:
            pool = self._spares.get(lease.shape, [])
            spare = next((pair for pair in pool if pair[1].hex() == first), None)
            if spare is None:  # another run took it meanwhile
                return False
            pool.remove(spare)
            pool.append((lease.actor, lease.ready))
            lease.actor, lease.ready = spare
            return True

    def placed(self, lease: Lease) -> Any:
        """The run's actor now that it may start: a warm one handed over while its own
        waited (which becomes a spare), else its own."""
        with self._lock:
            self._forget(lease)
            handed, lease.handed = lease.handed, None
            if handed is None:
                return lease.actor
            self._keep_spare(lease)
            lease.actor, lease.warm, lease.ready = handed, True, None
            return handed

    def cancel(self, lease: Lease) -> None:
        """The run will not start (stopped or taken back while it waited): its actor
        becomes a spare, and a warm actor handed to it goes back to the pool."""
        with self._lock:
            self._forget(lease)
            handed, lease.handed = lease.handed, None
            self._keep_spare(lease)
        if handed is not None:
            self.give_back(lease.shape, handed, reusable=True)

    def give_back(self, shape: Shape, actor: Any, reusable: bool) -> None:
        """After its run and cleanup: handed to a waiting run, kept idle, or retired."""
        with self._lock:
            if reusable and not self._closing and self._capacity() > 0:
                waiter = next((w for w in self._waiting if w.shape == shape and w.handed is None), None)
                if waiter is not None:
                    waiter.handed = actor
                    return
                others_wait = any(w.shape != shape for w in self._waiting)
                if not others_wait and self._held() < self._capacity():
                    self._idle.setdefault(shape, []).append(actor)
                    return
        retire(actor)

    def close(self) -> None:
        """Retire every idle actor and spare; actors given back from now on are retired too."""
        with self._lock:
            self._closing = True
            idle = self._take_idle(lambda _: True)
            spares = [actor for shape in list(self._spares) for actor, _ in self._spares.pop(shape)]
            waiting, self._waiting = self._waiting, []
            handed = [w.handed for w in waiting if w.handed is not None]
        for spare in spares:
            _kill(spare)
        self._retire_all([*idle, *handed])

    def _held(self) -> int:
        return sum(map(len, self._idle.values())) + sum(map(len, self._spares.values()))

    def _keep_spare(self, lease: Lease) -> None:
        """Called with the lock held."""
        others_wait = any(w.shape != lease.shape for w in self._waiting)
        if self._closing or others_wait or self._held() >= self._capacity():
            _kill(lease.actor)
        else:
            self._spares.setdefault(lease.shape, []).append((lease.actor, lease.ready))

    def _take_idle(self, which: Callable[[Shape], bool]) -> list[Any]:
        taken: list[Any] = []
        for shape in [s for s in self._idle if which(s)]:
            taken += self._idle.pop(shape)
        return taken

    def _forget(self, lease: Lease) -> None:
        if lease in self._waiting:
            self._waiting.remove(lease)

    @staticmethod
    def _retire_all(actors: list[Any]) -> None:
        for actor in actors:
            retire(actor)


def retire(actor: Any) -> None:
    """End an actor: its last cleanup (its process's control groups go), then the actor."""
    import ray

    try:
        ray.get(actor.cleanup.remote(), timeout=RETIRE_TIMEOUT_S)
    except Exception:  # a dead or stuck actor: killing it is all that is left
        pass
    _kill(actor)


def _kill(actor: Any) -> None:
    import ray

    try:
        ray.kill(actor, no_restart=True)
    except Exception:
        pass


def warm_capacity(cluster_cpus: Callable[[], float]) -> Callable[[], int]:
    """How many idle actors to keep: ``NSML_RAY_WARM_ACTORS``, else the cluster's CPUs."""
    configured = os.environ.get("NSML_RAY_WARM_ACTORS", "").strip()
    if configured:
        try:
            fixed = max(0, int(configured))
        except ValueError:
            log.warning("NSML_RAY_WARM_ACTORS=%r is not a whole number; using the cluster's CPUs", configured)
        else:
            return lambda: fixed
    return lambda: max(1, int(cluster_cpus()))


def end_run(actor: Any) -> bool:
    """The run's cleanup on its actor, keeping the actor: whether it may run again."""
    import ray

    try:
        return bool(ray.get(actor.cleanup.remote(last=False), timeout=CALL_TIMEOUT_S))
    except Exception:
        return False


def start_run(actor: Any, run: HostedRun) -> Exception | None:
    """Start the run on its actor; what went wrong, if something did."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    try:
        ray.get(actor.start.remote(run))
    except (RayTaskError, RayActorError) as exc:
        return exc
    return None
