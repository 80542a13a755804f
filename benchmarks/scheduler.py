"""How fast do short sessions go through the local runner and through Ray?

Why this exists: an organiser moving a hackathon from one machine to a Ray cluster wants
to know what the cluster's scheduling costs per session. In one process run this starts
two throw-away platforms on this machine, one with the local runner and one with
``--runner ray`` on a Ray cluster started here (a head with no CPUs and one worker node
with as many CPUs as the local runner has slots, all on 127.0.0.1), and pushes the same
``--sessions`` short sessions through each: a script that prints ``FIRST <time>`` as its
first line and exits. Sessions are launched by ``--clients`` concurrent ``nsml run``
callers, as many participants would. Per runner: sessions per minute (first launch to
last exit) and the median / 90th percentile of run-to-first-line (``nsml run`` called ->
the script's first line). Each platform first runs one warm-up session, untimed, so both
are measured once their server is up and ready (for Ray: its warm launcher actors).

Targets: Ray reaches at least 80% of the local runner's sessions per minute and a median
run-to-first-line under 3 s; the script exits 1 when either is missed (or a session failed).
Results with the load average: ``benchmarks/scheduler.md``.

Run ``.venv/bin/python benchmarks/scheduler.py`` (``--json`` prints one object).
Only 127.0.0.1 is contacted; temporary folders and the cluster are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _platform import NSML, cli, log  # benchmarks/ is on sys.path when run as a script

SCRIPT = 'import time\nprint("FIRST", repr(time.time()), flush=True)\n'
SESSION_TIMEOUT_S = 600.0
LAUNCHER = re.compile(r"\[nsml\] on Ray node .* launcher \d+ run (\d+)")
TARGET_SHARE = 0.8  # of the local runner's sessions per minute
TARGET_MEDIAN_S = 3.0


def _launch(env: dict[str, str], folder: Path) -> tuple[str, float]:
    launched = time.time()
    created = json.loads(cli(env, "run", "-d", "demo_kin", "--json", cwd=folder))
    return created["name"], launched


def _wait_all(env: dict[str, str], names: set[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + SESSION_TIMEOUT_S
    while time.monotonic() < deadline:
        sessions = {s["name"]: s for s in json.loads(cli(env, "ps", "-a", "--json")) if s["name"] in names}
        if len(sessions) == len(names) and all(
            s["status"] in ("exited", "failed", "stopped") for s in sessions.values()
        ):
            return sessions
        time.sleep(0.25)
    raise RuntimeError("sessions did not end in time")


def bench(label: str, env: dict[str, str], work: Path, sessions: int, clients: int) -> dict[str, Any]:
    folder = work / f"project-{label}"
    folder.mkdir()
    (folder / "main.py").write_text(SCRIPT)
    cli(env, "ps")  # start the server before timing
    warm_up, _ = _launch(env, folder)
    _wait_all(env, {warm_up})
    log(f"{label}: {sessions} sessions from {clients} clients ...")
    started = time.time()
    with ThreadPoolExecutor(clients) as pool:
        launched = dict(pool.map(lambda _: _launch(env, folder), range(sessions)))
    ended = _wait_all(env, set(launched))
    finished = time.time()
    failed = [name for name, s in ended.items() if s["status"] != "exited"]
    latencies = []
    warm = 0  # sessions started by a Ray actor that had run one before
    for name, at in launched.items():
        lines = cli(env, "logs", name).splitlines()
        first = next((line for line in lines if line.startswith("FIRST")), None)
        if first is not None:
            latencies.append(float(first.split()[1]) - at)
        runs = next((int(m.group(1)) for line in lines if (m := LAUNCHER.search(line))), 1)
        warm += runs > 1
    latencies.sort()
    return {
        "sessions": sessions,
        "failed": len(failed),
        "wall_s": finished - started,
        "sessions_per_min": 60.0 * sessions / (finished - started),
        "first_line_median_s": statistics.median(latencies) if latencies else None,
        "first_line_p90_s": latencies[int(0.9 * (len(latencies) - 1))] if latencies else None,
        "warm_starts": warm,
        "failure_reasons": sorted({str(ended[name].get("reason")) for name in failed})[:3],
    }


def _platform_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_")}
    return {**env, "NSML_HOME": str(home), **extra}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4, help="concurrent `nsml run` callers")
    parser.add_argument("--slots", type=int, default=2, help="local runner slots = Ray worker CPUs")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nsml-bench-sched-"))
    figures: dict[str, Any] = {
        "slots": options.slots,
        "clients": options.clients,
        "load_before": os.getloadavg(),
    }
    try:
        local = _platform_env(work / "local", NSML_MAX_CONCURRENT=str(options.slots))
        try:
            figures["local"] = bench("local", local, work, options.sessions, options.clients)
        finally:
            cli(local, "server", "stop", "-y")
        os.environ["NSML_RAY_WORKDIR"] = str(work / "ray-node")  # the worker node inherits it
        from ray.cluster_utils import Cluster

        log("starting a Ray cluster on 127.0.0.1 ...")
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
        )
        try:
            cluster.add_node(num_cpus=options.slots, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            ray_env = _platform_env(work / "ray", NSML_RUNNER="ray", NSML_RAY_ADDRESS=cluster.address)
            try:
                figures["ray"] = bench("ray", ray_env, work, options.sessions, options.clients)
            finally:
                cli(ray_env, "server", "stop", "-y")
        finally:
            cluster.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_after"] = os.getloadavg()
    figures["missed"] = missed_targets(figures["local"], figures["ray"])
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        show(figures)
    for reason in figures["missed"]:
        log(f"target missed: {reason}")
    return 1 if figures["missed"] else 0


def missed_targets(local: dict[str, Any], ray: dict[str, Any]) -> list[str]:
    """Why the run misses its targets; empty when it meets them."""
    runs = (("local", local), ("ray", ray))
    missed = [f"{row['failed']} {runner} sessions failed" for runner, row in runs if row["failed"]]
    share = ray["sessions_per_min"] / local["sessions_per_min"]
    if share < TARGET_SHARE:
        missed.append(
            f"Ray runs {share:.0%} of the local runner's sessions per minute (target {TARGET_SHARE:.0%})"
        )
    median = ray["first_line_median_s"]
    if median is None or median >= TARGET_MEDIAN_S:
        shown = "unknown" if median is None else f"{median:.2f} s"
        missed.append(f"Ray's median run-to-first-line is {shown} (target under {TARGET_MEDIAN_S:g} s)")
    return missed


def _seconds(value: float | None) -> str:
    return "none seen" if value is None else f"{value:.2f} s"


def show(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    load = " ".join(f"{x:.1f}" for x in figures["load_before"])
    table = Table(
        title=f"{figures['local']['sessions']} short sessions, {figures['slots']} slots, "
        f"{figures['clients']} clients, load {load} ({NSML})"
    )
    for column in ("runner", "sessions/min", "run-to-first-line median", "p90", "warm starts", "failed"):
        table.add_column(column)
    for runner in ("local", "ray"):
        row = figures[runner]
        table.add_row(
            runner,
            f"{row['sessions_per_min']:.1f}",
            _seconds(row["first_line_median_s"]),
            _seconds(row["first_line_p90_s"]),
            str(row["warm_starts"]),
            str(row["failed"]),
        )
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
