"""How fast is ``nsml.report``, compared with MLflow, and how long until a session prints?

Why this exists: the platform promises that reporting metrics costs a training loop
next to nothing (``nsml.report`` only buffers; a background thread ships batches) and
that ``nsml run`` feels instant. This script measures both against the numbers that
matter, in one run, on a throw-away embedded server:

1. ``nsml.report`` calls/s inside a real session, and reports/s until all are stored,
   then checks through the API that every metric point arrived (N reports x 2 metrics);
2. MLflow ``log_metric`` calls/s on a local file store (and an SQLite store);
3. the latency from launching ``nsml run`` to the script's first printed line, with and
   without ``import nsml`` first.

Run it as ``.venv/bin/python benchmarks/report_throughput.py`` (``make bench`` installs
MLflow first); ``--help`` lists the sizes, ``--json`` prints the figures as one object.
Only 127.0.0.1 is contacted; the temporary NSML_HOME is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _platform import NSML, cli, log  # benchmarks/ is on sys.path when run as a script

CLI_TIMEOUT_S = 120.0
SESSION_TIMEOUT_S = 600.0
MARK = "BENCH-FIRST-LINE"

REPORT_SCRIPT = """import json, sys, time
import nsml
import nsml.sdk

n = int(sys.argv[1])
t0 = time.perf_counter()
for i in range(n):
    nsml.report(step=i, loss=1.0 / (i + 1), acc=i / n)
t1 = time.perf_counter()
delivered = nsml.sdk._reporter.flush(timeout=300.0) if nsml.sdk._reporter else False
t2 = time.perf_counter()
result = {"n": n, "call_s": t1 - t0, "total_s": t2 - t0, "delivered": delivered}
print("BENCH-RESULT " + json.dumps(result), flush=True)
"""
FIRST_LINE_SCRIPT = f'import time\nprint("{MARK}", repr(time.time()), flush=True)\n'


def start_session(env: dict[str, str], folder: Path, args: str = "") -> str:
    return str(
        json.loads(cli(env, "run", "-d", "demo_kin", "-e", "main.py", "-a", args, "--json", cwd=folder))[
            "name"
        ]
    )


def bench_report(env: dict[str, str], home: Path, work: Path, n: int) -> dict[str, Any]:
    import httpx

    folder = work / "report"
    folder.mkdir()
    (folder / "main.py").write_text(REPORT_SCRIPT)
    name = start_session(env, folder, str(n))
    output = cli(env, "logs", "-f", name, timeout=SESSION_TIMEOUT_S)
    lines = [line for line in output.splitlines() if line.startswith("BENCH-RESULT ")]
    if not lines:
        raise RuntimeError(f"session {name} printed no result; its log:\n{output[-2000:]}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    server = json.loads((home / "server.json").read_text())
    owner, dataset, number = name.split("/")
    started = time.perf_counter()
    response = httpx.get(
        f"{server['url']}/api/v1/sessions/{owner}/{dataset}/{number}/metrics",
        headers={"Authorization": f"Bearer {server['token']}"},
        timeout=300.0,
    )
    response.raise_for_status()
    points = response.json()
    status = next(s for s in json.loads(cli(env, "ps", "-a", "--json")) if s["name"] == name)
    return {
        "session": name,
        "reports": n,
        "calls_per_s": n / result["call_s"],
        "delivered_per_s": n / result["total_s"],
        "flush_s": result["total_s"] - result["call_s"],
        "flush_ok": bool(result["delivered"]),
        "points_stored": len(points),
        "points_expected": 2 * n,
        "points_ok": len(points) == 2 * n,
        "metrics_read_s": time.perf_counter() - started,
        "session_status": status["status"],
    }


def bench_mlflow(work: Path, m: int) -> dict[str, float] | None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no traffic beyond 127.0.0.1
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.x refuses file: otherwise
    try:
        import mlflow
    except ImportError:
        log(
            "MLflow is not installed; skipping its rows. `make bench` installs it "
            '(pip install -e ".[bench]").'
        )
        return None
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    stores = {"file": "file:" + str(work / "mlruns"), "sqlite": f"sqlite:///{work / 'mlflow.db'}"}
    rates: dict[str, float] = {}
    for label, uri in stores.items():
        try:
            mlflow.set_tracking_uri(uri)
            with mlflow.start_run():
                started = time.perf_counter()
                for i in range(m):
                    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
                rates[label] = m / (time.perf_counter() - started)
        except Exception as exc:  # e.g. a store this MLflow version refuses
            log(f"MLflow {label} store skipped: {type(exc).__name__}: {exc}")
    return rates


def first_line(env: dict[str, str], folder: Path) -> tuple[float, float]:
    """(launch -> marker printed, launch -> marker seen in `nsml logs -f`), in seconds."""
    launched = time.time()
    name = start_session(env, folder)
    follow = subprocess.Popen([NSML, "logs", "-f", name], env=env, stdout=subprocess.PIPE, text=True)
    killer = threading.Timer(SESSION_TIMEOUT_S, follow.kill)
    killer.start()
    printed = seen = None
    try:
        assert follow.stdout is not None
        for line in follow.stdout:
            if line.startswith(MARK) and printed is None:
                seen = time.time()
                printed = float(line.split()[1])
        follow.wait()
    finally:
        killer.cancel()
    if printed is None or seen is None:
        raise RuntimeError(f"session {name} never printed {MARK}")
    return printed - launched, seen - launched


def bench_latency(env: dict[str, str], work: Path, k: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for label, prefix in (("plain", ""), ("import_nsml", "import nsml\n")):
        folder = work / f"latency-{label}"
        folder.mkdir()
        (folder / "main.py").write_text(prefix + FIRST_LINE_SCRIPT)
        runs = [first_line(env, folder) for _ in range(k)]
        printed, seen = [r[0] for r in runs], [r[1] for r in runs]
        figures[label] = {
            "median_s": statistics.median(printed),
            "max_s": max(printed),
            "seen_median_s": statistics.median(seen),
            "seen_max_s": max(seen),
        }
    return figures


def show(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    rep, mlf, lat, targets = figures["report"], figures["mlflow"], figures["latency"], figures["targets"]
    table = Table(title="OpenNSML report throughput and run latency")
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_row(f"nsml.report calls/s ({rep['reports']:,} reports)", f"{rep['calls_per_s']:,.0f}")
    table.add_row("nsml.report delivered/s (incl. flush)", f"{rep['delivered_per_s']:,.0f}")
    table.add_row(
        "metric points stored / expected",
        f"{rep['points_stored']:,} / {rep['points_expected']:,} "
        + ("[green]OK[/]" if rep["points_ok"] else "[red]MISMATCH[/]"),
    )
    for label, rate in (mlf or {}).items():
        table.add_row(f"MLflow log_metric calls/s ({label} store)", f"{rate:,.0f}")
        table.add_row(f"ratio nsml.report / MLflow ({label})", f"{rep['calls_per_s'] / rate:,.0f}x")
    if not mlf:
        table.add_row("MLflow log_metric", "not measured")
    for label, row in lat.items():
        table.add_row(
            f"run-to-first-line, {label}: median / max", f"{row['median_s']:.3f} s / {row['max_s']:.3f} s"
        )
        table.add_row(
            "  ... seen in `nsml logs -f`: median / max",
            f"{row['seen_median_s']:.3f} s / {row['seen_max_s']:.3f} s",
        )
    marks = {True: "[green]met[/]", False: "[red]not met[/]", None: "[yellow]not measured[/]"}
    table.add_row("target: nsml.report >= 10x MLflow per-call", marks[targets["report_10x_mlflow"]])
    table.add_row(
        "target: run-to-first-line < 1 s (median, import nsml)", marks[targets["first_line_under_1s"]]
    )
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100_000, help="nsml.report calls (N)")
    parser.add_argument("--mlflow-calls", type=int, default=2000, help="mlflow.log_metric calls (M)")
    parser.add_argument("--latency-runs", type=int, default=5, help="sessions per latency figure (K)")
    parser.add_argument("--json", action="store_true", help="print all figures as one JSON object")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nsml-bench-"))
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_")}
    env["NSML_HOME"] = str(home)
    figures: dict[str, Any] = {}
    try:
        try:
            log(f"starting the embedded server in {home} ...")
            cli(env, "ps")
            log(f"nsml.report x {options.reports:,} in a session ...")
            figures["report"] = bench_report(env, home, work, options.reports)
            log(f"run-to-first-line x {options.latency_runs} (twice) ...")
            figures["latency"] = bench_latency(env, work, options.latency_runs)
        finally:
            subprocess.run(
                [NSML, "server", "stop", "-y"], env=env, capture_output=True, timeout=CLI_TIMEOUT_S
            )
        log(f"MLflow log_metric x {options.mlflow_calls:,} ...")
        figures["mlflow"] = bench_mlflow(work, options.mlflow_calls)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mlflow_best = max(figures["mlflow"].values()) if figures["mlflow"] else None
    figures["ratio_vs_mlflow"] = figures["report"]["calls_per_s"] / mlflow_best if mlflow_best else None
    figures["targets"] = {
        "report_10x_mlflow": None if mlflow_best is None else figures["ratio_vs_mlflow"] >= 10,
        "first_line_under_1s": figures["latency"]["import_nsml"]["median_s"] < 1.0,
    }
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        show(figures)
    return 0 if figures["report"]["points_ok"] and figures["report"]["flush_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
