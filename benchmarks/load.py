"""Does one server carry a hackathon? N participants for M minutes against 127.0.0.1.

Why this exists: a hackathon of hundreds runs on one server. Each simulated participant
logs in (all at the same moment: a login burst), runs tiny sessions that report metrics
and save a checkpoint, follows each one's log as ``nsml logs -f`` does (a stream held
open while the session runs) and reads it whole once it ended, lists their checkpoints,
submits and waits for the score, and meanwhile reads ``ps`` and the board at human
rates (every few seconds), each over a kept-alive connection as the CLI's client holds
it. An organiser pushes a
second dataset half-way, closes it near the end and reads the board. Every request is
timed by kind; at the end (after a bounded drain for sessions and submissions still
running) the metric points and submissions sent are checked against what the server
stored and scored.

It prints a table (requests by kind, p50/p99 latency, errors), then one line::

    load: N participants, R requests, p99 X ms, errors E, reports lost L, submissions lost S

and exits 1 when a target is missed: zero errors, nothing lost, p99 under 250 ms for
the board and ``ps``. Run it as ``nice -n 10 .venv/bin/python benchmarks/load.py
--participants 25 --minutes 1`` (``--database postgresql`` starts a throw-away
PostgreSQL server, as the tests do; ``--json`` prints the figures as one object). Only
127.0.0.1 is contacted; the temporary NSML_HOME is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _platform import NSML, log

from nsml.client.api import ApiClient, login
from nsml.client.archive import pack, pack_dir
from nsml.names import SessionRef, parse_session

ROOT = Path(__file__).resolve().parents[1]
DEMO_KIN = ROOT / "src" / "nsml" / "datasets" / "demo" / "demo_kin"
ADMIN_TOKEN = "load-benchmark-admin"
PASSWORD = "load benchmark password"
DATASET, SECOND = "load_kin", "load_kin_b"
STEPS = 20  # reports per session, two metrics each
TARGET_P99_MS = 250.0
TARGET_KINDS = ("board", "ps")
FINAL = ("scored", "failed", "cancelled")
T = TypeVar("T")

SCRIPT = f"""
import argparse, os, time
import nsml

parser = argparse.ArgumentParser()
parser.add_argument("--mode", default="train")
parser.add_argument("--pause", type=int, default=0)
parser.add_argument("--iteration", default="0")
config = parser.parse_args()

def save(dir_name, **kwargs):
    open(os.path.join(dir_name, "w.txt"), "w").write("1")

def load(dir_name, **kwargs):
    pass

def infer(raw_data, **kwargs):
    return [(0.5, len(text) % 2) for text in raw_data]

nsml.bind(save=save, load=load, infer=infer)
if config.pause:
    nsml.paused(scope=locals())
for step in range({STEPS}):
    nsml.report(step=step, loss=1.0 / (step + 1), accuracy=step / {STEPS})
    print("step", step, flush=True)
    time.sleep(0.1)
nsml.save("best")
"""


class Recorder:
    """Latencies and errors by kind of request, from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}
        self.began = time.perf_counter()
        self.minutes: dict[str, dict[int, list[float]]] = {}  # kind -> minute of the run -> ms

    def call(self, kind: str, work: Callable[[], T]) -> T | None:
        """``work()``, timed under ``kind``; None (and an error counted) when it raised."""
        started = time.perf_counter()
        try:
            result = work()
        except Exception as exc:  # an error of any kind is a finding, not a crash
            with self.lock:
                self.errors.setdefault(kind, []).append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        elapsed_ms = (time.perf_counter() - started) * 1000
        minute = int((started - self.began) // 60)
        with self.lock:
            self.latencies.setdefault(kind, []).append(elapsed_ms)
            self.minutes.setdefault(kind, {}).setdefault(minute, []).append(elapsed_ms)
        return result

    def by_minute(self, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        """p50 / p99 of ``kinds`` for each minute of the run: whether the tail is the
        opening login burst, the sessions queueing later, or spread over the run."""
        minutes = sorted({m for kind in kinds for m in self.minutes.get(kind, {})})
        rows = []
        for minute in minutes:
            row: dict[str, Any] = {"minute": minute + 1}
            for kind in kinds:
                values = self.minutes.get(kind, {}).get(minute, [])
                row[kind] = {
                    "requests": len(values),
                    "p50_ms": round(statistics.median(values), 1) if values else None,
                    "p99_ms": round(percentile(values, 0.99), 1) if values else None,
                }
            rows.append(row)
        return rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Participant:
    """One person of the hackathon, on a thread of their own."""

    def __init__(self, name: str, url: str, rec: Recorder, start: threading.Event) -> None:
        self.name, self.url, self.rec, self.start = name, url, rec, start
        self.sessions: list[str] = []
        self.submissions: list[int] = []
        self.scored = 0
        self.unfinished = 0  # still queued or running when the drain ended: not lost
        self.drain_until = float("inf")
        self.api: ApiClient | None = None
        self.rng = random.Random(name)

    def run(self, until: float, drain_until: float, code: bytes) -> None:
        self.drain_until = drain_until
        self.start.wait()
        token = self.rec.call("login", lambda: login(self.url, self.name, PASSWORD).token)
        if token is None:
            return
        self.api = api = ApiClient(self.url, token)
        time.sleep(self.rng.uniform(0, 5))  # people do not all press enter at once
        next_ps, next_board = time.monotonic(), time.monotonic() + self.rng.uniform(2, 10)
        while time.monotonic() < until:
            created = self.rec.call("run", lambda: api.create_session(DATASET, "main.py", [], "", 0, code))
            if created is None:
                time.sleep(2)
                continue
            self.sessions.append(created.name)
            ref = parse_session(created.name)
            status = created.status
            follower = threading.Thread(target=self._follow, args=(api, ref), daemon=True)
            follower.start()  # `nsml logs -f` in a second terminal, for as long as the session runs
            while status not in ("exited", "failed", "stopped") and time.monotonic() < drain_until:
                now = time.monotonic()
                if now >= next_ps:  # `nsml ps`, and from it whether the session ended
                    listed = self.rec.call("ps", lambda: api.list_sessions(all=True, dataset=DATASET))
                    mine = [s for s in listed or [] if s.name == created.name]
                    status = mine[0].status if mine else status
                    next_ps = now + self.rng.uniform(2, 5)
                if now >= next_board:
                    self.rec.call("board", lambda: api.board(DATASET))
                    next_board = now + self.rng.uniform(5, 15)
                time.sleep(self.rng.uniform(1, 2))
            follower.join(timeout=max(0.0, drain_until - time.monotonic()))
            if status != "exited":
                continue
            self.rec.call("logs", partial(read_all_logs, api, ref))  # `nsml logs`, once it ended
            if not self.rec.call("model ls", partial(api.list_checkpoints, ref)):
                continue
            self._submit(api, created.name, drain_until)
            if time.monotonic() < until:
                self.rec.call("board", lambda: api.board(DATASET))

    def _follow(self, api: ApiClient, ref: SessionRef) -> None:
        """``nsml logs -f``: the stream's opening is timed (its length is the session's)."""
        path = f"/sessions/{ref.path}/logs"
        response = self.rec.call("logs -f (open)", lambda: api._open_stream(path, {"follow": True}))
        if response is None:
            return
        try:
            for _ in response.iter_raw():
                pass
        except httpx.HTTPError as exc:
            if time.monotonic() >= self.drain_until:
                return  # the benchmark is over and its server stopping: not the server's error
            error = f"{type(exc).__name__}: {exc}"[:200]
            with self.rec.lock:
                self.rec.errors.setdefault("logs -f (stream)", []).append(error)
        finally:
            response.close()

    def _submit(self, api: ApiClient, session: str, drain_until: float) -> None:
        submitted = self.rec.call("submit", lambda: api.submit(session, "best", 64))
        if submitted is None:
            return
        self.submissions.append(submitted.id)
        current = submitted
        while current.status not in FINAL and time.monotonic() < drain_until:
            polled = self.rec.call("submit wait", lambda: api.get_submission(submitted.id, wait=5))
            current = polled or current
        if current.status not in FINAL:
            self.unfinished += 1
        if current.status == "scored":
            self.scored += 1
            # a long poll of a submission already final answers at once
            self.rec.call("wait=5, final", lambda: api.get_submission(submitted.id, wait=5))

    def stored_points(self) -> tuple[int, int]:
        """(metric points the exited sessions sent, points the server holds for them)."""
        sent = stored = 0
        if self.api is None:
            return 0, 0
        for name in self.sessions:
            ref = parse_session(name)
            session = self.api.get_session(ref)
            if session.status != "exited":
                continue
            sent += STEPS * 2
            stored += len(self.api.list_metrics(ref))
        return sent, stored


def read_all_logs(api: ApiClient, ref: SessionRef) -> bytes:
    return b"".join(api.read_logs(ref))


def organiser(api: ApiClient, rec: Recorder, start: threading.Event, until: float, seconds: float) -> None:
    start.wait()
    half, near_end = time.monotonic() + seconds / 2, time.monotonic() + seconds * 0.8
    pushed = closed = False
    while time.monotonic() < until:
        if not pushed and time.monotonic() >= half:
            rec.call("push", lambda: api.create_dataset(SECOND, "accuracy", "", pack_dir(DEMO_KIN)))
            pushed = True
        if pushed and not closed and time.monotonic() >= near_end:
            rec.call("close", lambda: api.close_dataset(SECOND))
            closed = True
        rec.call("board", lambda: api.board(DATASET))
        rec.call("ps", lambda: api.list_sessions(all=True, limit=50))
        time.sleep(3)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """'' for the server's own SQLite file, or the URL of a throw-away PostgreSQL."""
    if kind == "sqlite":
        yield ""
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from postgres import postgres_server

    with postgres_server() as url:
        yield url


@contextmanager
def server(home: Path, db_url: str, max_concurrent: int) -> Iterator[tuple[str, int]]:
    """A foreground ``nsml server start`` on a free port: (its URL, its pid)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NSML_HOME": str(home), "NSML_SERVER_TOKEN": ADMIN_TOKEN}
    env.update(NSML_DEFAULT_DAILY_LIMIT="0", NSML_DB=db_url)
    command = [NSML, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--max-concurrent", str(max_concurrent)]
    url = f"http://127.0.0.1:{port}"
    with (home.parent / "server.log").open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, auth = time.monotonic() + 120, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        while True:
            try:
                if httpx.get(url + "/api/v1/health", headers=auth, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = (home.parent / "server.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"error: the server did not start:\n{output}")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time the server process itself has used (its sessions' processes not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def peak_memory_mb(pid: int) -> float:
    """The server process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def simulate(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rec = Recorder()
    load_before = os.getloadavg()[0]  # a shared machine's other work skews every figure
    with database(args.database) as db_url, server(work / "home", db_url, args.max_concurrent) as (url, pid):
        admin = ApiClient(url, ADMIN_TOKEN)
        admin.add_user("organiser", "organiser", PASSWORD)
        names = [f"p{i:03d}" for i in range(args.participants)]
        for name in names:
            admin.add_user(name, "participant", PASSWORD)
        organiser_api = ApiClient(url, login(url, "organiser", PASSWORD).token)
        organiser_api.create_dataset(DATASET, "accuracy", "", pack_dir(DEMO_KIN))
        code = pack([(write_script(work), "main.py")])
        seconds = args.minutes * 60
        start = threading.Event()
        began = time.monotonic()
        rec.began = time.perf_counter()
        until, drain_until = began + seconds, began + seconds + args.drain
        people = [Participant(name, url, rec, start) for name in names]
        threads = [threading.Thread(target=p.run, args=(until, drain_until, code)) for p in people]
        threads.append(threading.Thread(target=organiser, args=(organiser_api, rec, start, until, seconds)))
        log(f"{len(people)} participants for {args.minutes:g} min on {args.database} ...")
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join(timeout=max(1.0, drain_until + 60 - time.monotonic()))
        points = [p.stored_points() for p in people]
        figures: dict[str, Any] = {
            "participants": args.participants,
            "minutes": args.minutes,
            "database": args.database,
            "sessions": sum(len(p.sessions) for p in people),
            "points_sent": sum(sent for sent, _ in points),
            "points_stored": sum(stored for _, stored in points),
            "submissions_sent": sum(len(p.submissions) for p in people),
            "submissions_scored": sum(p.scored for p in people),
            "submissions_unfinished": sum(p.unfinished for p in people),
            "server_peak_mb": round(peak_memory_mb(pid)),
            "server_cpu_s": round(cpu_seconds(pid), 1),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
    figures["kinds"] = {
        kind: {
            "requests": len(rec.latencies.get(kind, [])) + len(rec.errors.get(kind, [])),
            "p50_ms": round(statistics.median(rec.latencies[kind]), 1) if rec.latencies.get(kind) else None,
            "p99_ms": round(percentile(rec.latencies.get(kind, []), 0.99), 1),
            "errors": len(rec.errors.get(kind, [])),
        }
        for kind in sorted(set(rec.latencies) | set(rec.errors))
    }
    figures["by_minute"] = rec.by_minute(("board", "ps"))
    every = [ms for values in rec.latencies.values() for ms in values]
    figures["requests"] = sum(k["requests"] for k in figures["kinds"].values())
    figures["p99_ms"] = round(percentile(every, 0.99), 1)
    figures["errors"] = sum(k["errors"] for k in figures["kinds"].values())
    figures["error_samples"] = sorted({e for errors in rec.errors.values() for e in errors})[:5]
    figures["reports_lost"] = figures["points_sent"] - figures["points_stored"]
    figures["submissions_lost"] = (
        figures["submissions_sent"] - figures["submissions_scored"] - figures["submissions_unfinished"]
    )
    return figures


def write_script(work: Path) -> Path:
    path = work / "main.py"
    path.write_text(SCRIPT)
    return path


def missed_targets(figures: dict[str, Any]) -> list[str]:
    missed = []
    if figures["errors"]:
        missed.append(f"{figures['errors']} errors")
    if figures["reports_lost"] or figures["submissions_lost"]:
        missed.append("reports or submissions lost")
    if figures["submissions_unfinished"]:
        missed.append(f"{figures['submissions_unfinished']} submissions not scored within the drain")
    for kind in TARGET_KINDS:
        p99 = figures["kinds"].get(kind, {}).get("p99_ms", 0)
        if p99 >= TARGET_P99_MS:
            missed.append(f"{kind} p99 {p99:g} ms >= {TARGET_P99_MS:g} ms")
    return missed


def print_table(figures: dict[str, Any]) -> None:
    print(f"{'kind':<16}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for kind, row in figures["kinds"].items():
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:g}"
        print(f"{kind:<16}{row['requests']:>9}{p50:>9}{row['p99_ms']:>9g}{row['errors']:>8}")
    print(f"metric points: {figures['points_sent']} sent, {figures['points_stored']} stored")
    print(
        f"submissions: {figures['submissions_sent']} sent, {figures['submissions_scored']} scored, "
        f"{figures['submissions_unfinished']} still queued or running when the drain ended"
    )
    print(
        f"sessions: {figures['sessions']}; server peak memory {figures['server_peak_mb']} MiB, "
        f"CPU {figures['server_cpu_s']} s"
    )
    print(f"machine load average (1 min) before and after: {figures['load_average']}")
    print("minute   board p50 / p99 ms     ps p50 / p99 ms")
    for row in figures["by_minute"]:
        board, ps = row["board"], row["ps"]
        print(
            f"{row['minute']:>6}   {board['p50_ms'] or '-':>8} / {board['p99_ms'] or '-':<8}"
            f"   {ps['p50_ms'] or '-':>8} / {ps['p99_ms'] or '-':<8}"
        )
    for sample in figures["error_samples"]:
        print(f"error: {sample}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=25, help="simulated participants (N)")
    parser.add_argument("--minutes", type=float, default=1.0, help="how long they work (M)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--max-concurrent", type=int, default=4, help="sessions the server runs at once")
    parser.add_argument("--drain", type=float, default=240, help="seconds to let the last ones finish")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if args.participants < 1 or args.minutes <= 0:
        raise SystemExit("error: --participants must be at least 1 and --minutes more than 0")
    work = Path(tempfile.mkdtemp(prefix="nsml-load-"))
    try:
        figures = simulate(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missed = missed_targets(figures)
    figures["missed"] = missed
    print(json.dumps(figures, indent=2)) if args.json else print_table(figures)
    print(
        f"load: {figures['participants']} participants, {figures['requests']} requests, "
        f"p99 {figures['p99_ms']:g} ms, errors {figures['errors']}, "
        f"reports lost {figures['reports_lost']}, submissions lost {figures['submissions_lost']}"
    )
    if missed:
        log("missed: " + "; ".join(missed))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
