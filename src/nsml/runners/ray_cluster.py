"""Sessions and evaluations as Ray actors on a cluster (``--runner ray``).

Why actors rather than Ray's job submission API: an evaluation needs a live, two-way
channel to ``nsml.paused`` (test inputs in, predictions out) with labels kept on the
server, and a session's log has to reach ``nsml logs -f`` as it is written. An actor
method call carries both, with no extra service on the nodes (jobs need each node's
dashboard agent and ship code through the cluster's storage) and no port opened by the
worker. Each run is one :class:`SessionHost` actor that reserves the session's CPUs and
GPUs; Ray queues it until a node has them, and an actor whose node dies fails its
method calls, which is how a lost worker turns into a failed session with a reason.
The actors belong to the server's driver, so they end when the server does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nsml.runners.base import EvaluationProcess, Outcome, Runner, RunnerEvents, RunSpec
from nsml.runners.environments import EnvironmentFailed, spec_requirements
from nsml.runners.fairshare import RunsByOwner, WaitNotices, cap_reason, next_turn, owner_of
from nsml.runners.process import outcome
from nsml.runners.ray_evaluation import (
    CALL_TIMEOUT_S,
    POLL_S,
    RayEvaluation,
    actor_limit_reason,
    first_line,
)
from nsml.runners.ray_pool import WarmActors, end_run, retire, start_run, warm_capacity
from nsml.runners.ray_worker import HostedRun, SessionHost, pack_folder
from nsml.store.entities import SessionStatus

log = logging.getLogger("nsml.ray")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _is_loopback(address: str) -> bool:
    host = urlsplit(f"//{address.removeprefix('ray://')}").hostname or ""
    return host in _LOOPBACK


def _stopped_early() -> Outcome:
    return Outcome(SessionStatus.STOPPED, None, "stopped before it started")


@dataclass
class _Run:
    actor: Any = None
    stop_requested: bool = False
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    placed: bool = False  # its actor got a node and started (set under the runner's lock)
    withdrawn: bool = False  # taken back before it was placed; queued again in a new _Run


@dataclass
class _Queued:
    spec: RunSpec
    seq: int  # the order it was first queued in; kept when an unplaced run is taken back


class RayRunner(Runner):
    """Schedules every run onto a Ray cluster; see the module docstring for the design.

    Ray serves actors waiting for resources in the order they were created, so handing
    every queued session to Ray at once would be first come, first served. Instead the
    runner keeps its own queue and gives Ray at most one waiting actor per resource shape
    (CPUs, GPUs), chosen in fair-share order (:mod:`nsml.runners.fairshare`): the owner
    with the fewest sessions on the cluster first, then the earliest queued, and no owner
    beyond ``max_per_user`` (0: no cap). When a session arrives whose owner should go
    before the one whose actor still waits for a node, that actor is taken back (it never
    started) and the newcomer's takes its place.
    """

    def __init__(
        self, address: str, sandboxed: bool = False, cpus_per_session: float = 1.0, max_per_user: int = 0
    ) -> None:
        self.address = address
        self.sandboxed = sandboxed
        self.cpus_per_session = cpus_per_session
        self.max_per_user = max(0, max_per_user)
        self._queue: list[_Queued] = []  # not yet handed to Ray, in ``seq`` order
        self._seq = 0
        self._placing: dict[tuple[float, int], int] = {}  # shape -> the session whose actor waits
        self._going = RunsByOwner()  # sessions handed to Ray (waiting or running) per owner
        self._admitted: dict[int, _Queued] = {}  # handed to Ray, as they were queued
        self._notices = WaitNotices()
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self._events: RunnerEvents | None = None
        self._closing = False
        self._host: Any = None
        self._pool: WarmActors | None = None

    def start(self, events: RunnerEvents) -> None:
        if _is_loopback(self.address):
            # Ray swaps a loopback address for the host's public one unless told the
            # cluster is local; a cluster started with --node-ip-address=127.0.0.1 needs this.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        options: dict[str, Any] = {}
        if _is_loopback(self.address):
            options["_node_ip_address"] = "127.0.0.1"
        ray.init(
            address=self.address,
            namespace="opennsml",
            logging_level=logging.WARNING,
            log_to_driver=False,
            **options,
        )
        self._host = ray.remote(max_restarts=0, max_concurrency=4)(SessionHost)  # type: ignore[call-overload]
        capacity = warm_capacity(lambda: ray.cluster_resources().get("CPU", 0))
        self._pool = WarmActors(self._new_actor, capacity)
        fits = (
            int(ray.cluster_resources().get("CPU", 0) // self.cpus_per_session)
            if self.cpus_per_session
            else 0
        )
        self._pool.prewarm((self.cpus_per_session, 0), min(capacity(), fits))
        self._notices.start(events)
        with self._lock:
            self._events = events
            self._schedule()

    def gpus_per_machine(self) -> int:
        """The largest GPU count of one alive node (a session's actor runs on one node)."""
        import ray

        counts = [n["Resources"].get("GPU", 0) for n in ray.nodes() if n.get("Alive")]
        return int(max(counts, default=0))

    def cpus_per_machine(self) -> int:
        """The largest CPU count of one alive node."""
        import ray

        counts = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        return int(max(counts, default=0))

    def _cpus(self, spec: RunSpec) -> float:
        return float(spec.cpus) if spec.cpus else self.cpus_per_session

    def _new_actor(self, cpus: float, gpus: int) -> Any:
        return self._host.options(num_cpus=cpus, num_gpus=gpus).remote()

    def _hosted(self, spec: RunSpec, evaluation: bool) -> HostedRun:
        dataset = None
        if spec.train_dir is not None and spec.dataset_url:  # the URL is the server's to build
            # a node keeps one copy per server and dataset version, however many sessions use it
            dataset = (spec.dataset_url, f"{spec.api_url}#{spec.env.get('NSML_DATASET_VERSION', '')}")
        requirements = spec_requirements(spec)  # read here, from the shipped archive
        return HostedRun(
            session_id=spec.session_id,
            name=spec.name,
            argv=spec.argv,
            env=spec.env,
            code=pack_folder(spec.work_dir),
            checkpoint=pack_folder(spec.checkpoint_dir) if spec.checkpoint_dir is not None else None,
            dataset=dataset,
            api_url=None if evaluation else spec.api_url,
            sandboxed=self.sandboxed,
            evaluation=evaluation,
            limits=spec.limits,
            requirements=None if requirements is None else tuple(requirements),
        )

    # sessions ----------------------------------------------------------------------------
    def submit(self, spec: RunSpec) -> None:
        with self._lock:
            if self._closing:
                return
            self._queue.append(_Queued(spec, self._seq))
            self._seq += 1
            self._schedule()

    def queue_position(self, session_id: int) -> int | None:
        with self._lock:
            for position, queued in enumerate(self._queue, start=1):
                if queued.spec.session_id == session_id:
                    return position
        return None

    def stop(self, session_id: int) -> bool:
        with self._lock:
            for queued in self._queue:
                if queued.spec.session_id == session_id:  # never handed to Ray
                    self._queue.remove(queued)
                    self._notices.forget(session_id)
                    self._schedule()
                    return False
            run = self._runs.get(session_id)
            if run is None:
                return False
            run.stop_requested = True
            # an actor still waiting for a node may become another run's: its wait sees the stop
            actor = run.actor if run.placed else None
        if actor is not None:
            actor.terminate.remote()
        return True

    def stop_starting(self) -> None:
        self._closing = True  # a plain store, safe in a signal handler

    def shutdown(self, reason: str) -> None:
        with self._lock:
            self._closing = True
            self._queue.clear()
            runs = list(self._runs.values())
        for run in runs:
            run.stop_requested = True
            if run.actor is not None and run.placed:
                run.actor.terminate.remote()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=15)
        if self._pool is not None:
            self._pool.close()  # no actor outlives the server, and their nodes' resources come back
        import ray

        ray.shutdown()

    # fair share ----------------------------------------------------------------------------
    def _shape(self, spec: RunSpec) -> tuple[float, int]:
        return (self._cpus(spec), spec.gpus)

    def _schedule(self) -> None:
        """Hand Ray the queued sessions whose turn it is; called with the lock held."""
        if self._closing or self._events is None:
            return
        self._take_back_overtaken()
        while True:
            turn = next_turn(
                self._queue,
                lambda q: owner_of(q.spec),
                self._going,
                self.max_per_user,
                lambda q: self._shape(q.spec) not in self._placing,
            )
            if turn is None:
                break
            self._admit(turn)
        self._explain_waits()

    def _admit(self, queued: _Queued) -> None:
        spec = queued.spec
        self._queue.remove(queued)
        run = _Run()
        self._runs[spec.session_id] = run
        self._placing[self._shape(spec)] = spec.session_id
        self._going.add(spec.session_id, owner_of(spec))
        self._notices.tell(spec.session_id, None)
        self._admitted[spec.session_id] = queued
        run.thread = threading.Thread(
            target=self._run_guarded, args=(spec, run), name=f"nsml-ray-{spec.session_id}", daemon=True
        )
        run.thread.start()

    def _take_back_overtaken(self) -> None:
        """An actor still waiting for a node yields to a queued session that should go first."""
        for shape, session_id in list(self._placing.items()):
            run = self._runs.get(session_id)
            if run is None or run.placed or run.stop_requested:
                continue
            owner = self._going.owner(session_id)
            rank = self._going[owner] - 1  # its owner's count without it
            ahead = [
                q
                for q in self._queue
                if self._shape(q.spec) == shape
                and self._going.get(owner_of(q.spec), 0) < rank
                and not (self.max_per_user and self._going.get(owner_of(q.spec), 0) >= self.max_per_user)
            ]
            if not ahead:
                continue
            run.withdrawn = True  # its thread kills the actor and reports nothing
            self._placing.pop(shape)
            self._runs.pop(session_id)
            self._release(session_id)
            queued = self._admitted.pop(session_id)
            position = next((i for i, q in enumerate(self._queue) if q.seq > queued.seq), len(self._queue))
            self._queue.insert(position, queued)

    def _release(self, session_id: int) -> None:
        self._going.remove(session_id)

    def _explain_waits(self) -> None:
        for queued in self._queue:
            spec = queued.spec
            going = self._going.get(owner_of(spec), 0)
            reason: str | None = None
            if self.max_per_user and going >= self.max_per_user:
                reason = cap_reason(going, "sessions")
            elif self._shape(spec) in self._placing:
                reason = f"No machine available: waiting for a Ray node with {self._need(spec)}"
            self._notices.tell(spec.session_id, reason)

    def _need(self, spec: RunSpec) -> str:
        return f"{self._cpus(spec):g} CPU" + (f", {spec.gpus} GPU" if spec.gpus else "")

    def _placed(self, spec: RunSpec, run: _Run) -> bool:
        """Its actor got a node: the next of its shape may go to Ray. False if taken back."""
        with self._lock:
            if run.withdrawn:
                return False
            run.placed = True
            if self._placing.get(self._shape(spec)) == spec.session_id:
                del self._placing[self._shape(spec)]
            self._schedule()
            return True

    def _run_guarded(self, spec: RunSpec, run: _Run) -> None:
        assert self._events is not None
        result: Outcome | None
        try:
            result = self._run(spec, run)
        except EnvironmentFailed as exc:  # read here, from the shipped archive: the session's mistake
            with spec.log_path.open("ab") as out:
                out.write(f"[nsml] {exc}\n".encode())
            result = Outcome(SessionStatus.FAILED, None, str(exc))
        except Exception as exc:  # the session must end with a reason, whatever broke
            log.exception("session %s on Ray", spec.name)
            if run.actor is not None:
                retire(run.actor)
            result = Outcome(SessionStatus.FAILED, None, f"the Ray runner failed: {exc}")
        finally:
            with self._lock:
                if not run.withdrawn:
                    self._runs.pop(spec.session_id, None)
                    if self._placing.get(self._shape(spec)) == spec.session_id:
                        del self._placing[self._shape(spec)]
                    self._release(spec.session_id)
                    self._admitted.pop(spec.session_id, None)
                    self._schedule()
            run.done.set()
        if result is not None and not run.withdrawn:  # a taken-back run is queued again
            self._events.on_finished(spec.session_id, result)

    def _run(self, spec: RunSpec, run: _Run) -> Outcome | None:
        """The session's outcome; None when it was taken back before it started."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        assert self._events is not None and self._pool is not None
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        hosted = self._hosted(spec, evaluation=False)
        with spec.log_path.open("ab", buffering=0) as out:
            actor: Any = None
            for attempt in range(2):
                placed = self._place(spec, run, fresh=attempt > 0)
                if placed is None or isinstance(placed, Outcome):
                    return placed
                actor = placed
                failure = start_run(actor, hosted)
                if failure is None:
                    break
                if attempt == 0 and isinstance(failure, RayActorError):
                    continue  # a warm actor or spare whose node died while it waited
                retire(actor)
                reason = f"could not start on Ray: {first_line(failure)}"
                out.write(f"[nsml] {reason}\n".encode())
                return Outcome(SessionStatus.FAILED, None, reason)
            if run.stop_requested:  # asked while it started: the terminate may have come first
                actor.terminate.remote()
            self._events.on_started(spec.session_id)
            offset, code = 0, None
            while code is None:
                try:
                    chunk, code = ray.get(actor.poll.remote(offset), timeout=CALL_TIMEOUT_S)
                except (RayActorError, GetTimeoutError) as exc:
                    reason = f"the Ray worker running the session was lost: {first_line(exc)}"
                    ray.kill(actor)
                    return Outcome(SessionStatus.FAILED, None, reason)
                if chunk:
                    out.write(chunk)
                    offset += len(chunk)
                elif code is None:
                    time.sleep(POLL_S)
        limit = actor_limit_reason(actor)
        stopped = run.stop_requested
        clean = end_run(actor) and not stopped and limit is None and code >= 0
        self._pool.give_back(self._shape(spec), actor, reusable=clean)
        return outcome(code, stopped and not self._closing, self._closing, limit)

    def _place(self, spec: RunSpec, run: _Run, fresh: bool) -> Any:
        """An actor with a node for the run; else the Outcome of a run stopped while it
        waited, or None when it was taken back."""
        assert self._pool is not None
        with self._lock:
            if run.withdrawn:
                return None
            if run.stop_requested:
                return _stopped_early()
            lease = self._pool.take(self._shape(spec), fresh=fresh)
            run.actor = lease.actor
        shape = self._shape(spec)

        def waiting() -> None:
            with self._lock:
                if not run.withdrawn:
                    reason = f"No machine available: waiting for a Ray node with {self._need(spec)}"
                    self._notices.tell(spec.session_id, reason)

        actor = self._pool.acquire(lease, lambda: run.withdrawn or run.stop_requested, waiting)
        if actor is None:
            return None if run.withdrawn else _stopped_early()
        with self._lock:
            run.actor = actor
        if not self._placed(spec, run):  # taken back just as it got a node
            self._pool.give_back(shape, actor, reusable=True)
            return None
        return actor

    # evaluations -------------------------------------------------------------------------
    def start_evaluation(self, spec: RunSpec) -> EvaluationProcess:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        hosted = self._hosted(spec, evaluation=True)
        pool = self._pool
        assert pool is not None

        def acquire(gone: Callable[[], bool]) -> Any:  # a warm actor when one is idle, never reused after
            return pool.acquire(pool.take((self.cpus_per_session, 0)), gone, lambda: None)

        return RayEvaluation(acquire, hosted, spec.log_path)
