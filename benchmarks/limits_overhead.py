"""What do the resource limits add to the start of a session?

Why this exists: every session and evaluation now runs in control groups of its own
(memory, pids, cpu), with rlimits, a sized /tmp and /dev/shm, a log pump and a disk watch.
The target is that all of it adds under 50 ms to a run's start. This launches the same
sandboxed ``python -c pass`` through the platform's own launcher, A with the limits a
session gets (the host's best enforcer: cgroup v2, v1 or rlimits) and B with none (no
control group, no caps), in turn A B A B ... so that drift hits both, and prints the
medians and the paired difference (launch to exit, the control groups' removal
included). It exits 1 when the median difference misses the target.

Run it as ``.venv/bin/python benchmarks/limits_overhead.py [--runs 30] [--json]`` as root
(or wherever the server would run); needs bubblewrap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nsml.runners import cgroups, sandbox
from nsml.runners.base import RunSpec
from nsml.runners.limits import Limits
from nsml.runners.process import ProcessLauncher
from nsml.sizes import GIB, MIB

TARGET_MS = 50.0
SESSION_LIMITS = Limits(
    memory_bytes=4 * GIB,
    shm_bytes=512 * MIB,
    tmp_bytes=1 * GIB,
    cpus=1.0,
    pids=1024,
    disk_bytes=10 * GIB,
    log_bytes=100 * MIB,
)
NO_LIMITS = Limits(tmp_bytes=0, shm_bytes=0)


class _NoEnforcer(cgroups.RlimitEnforcer):
    """B: no control group and no rlimit but the core-dump one."""

    def rlimits(self, limits: Limits) -> list[tuple[int, int]]:
        return cgroups.Enforcer.rlimits(self, limits)


def _launch(launcher: ProcessLauncher, root: Path, index: int, limits: Limits) -> float:
    work = root / f"work-{index}"
    work.mkdir()
    spec = RunSpec(
        session_id=index,
        name=f"bench/{index}",
        argv=[sys.executable, "-c", "pass"],
        work_dir=work,
        env={},
        log_path=root / f"log-{index}.txt",
        limits=limits,
    )
    began = time.perf_counter()
    process = launcher.spawn(spec, {})
    code = process.wait()
    elapsed = time.perf_counter() - began
    if code != 0:
        raise SystemExit(f"the probe exited {code}: {(root / f'log-{index}.txt').read_text()[-500:]}")
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    works, why = sandbox.sandbox_works()
    if not works:
        raise SystemExit(f"error: the sandbox does not work here: {why}")
    enforcer = cgroups.enforcer()
    launcher = ProcessLauncher(sandboxed=True)
    with_limits: list[float] = []
    without: list[float] = []
    with tempfile.TemporaryDirectory(prefix="nsml-limits-bench-") as folder:
        root = Path(folder)
        _launch(launcher, root, 0, SESSION_LIMITS)  # warm-up: caches, the cgroup folder
        for index in range(1, args.runs + 1):
            with_limits.append(_launch(launcher, root, 2 * index, SESSION_LIMITS))
            original = cgroups.enforcer
            cgroups.enforcer = lambda: _NoEnforcer("benchmark baseline")  # type: ignore[assignment]
            try:
                without.append(_launch(launcher, root, 2 * index + 1, NO_LIMITS))
            finally:
                cgroups.enforcer = original  # type: ignore[assignment]
    cgroups.release()
    added = [a - b for a, b in zip(with_limits, without, strict=True)]
    figures = {
        "enforcer": enforcer.name,
        "runs": args.runs,
        "with_limits_ms_median": round(statistics.median(with_limits), 1),
        "without_ms_median": round(statistics.median(without), 1),
        "added_ms_median": round(statistics.median(added), 1),
        "added_ms_max": round(max(added), 1),
        "target_ms": TARGET_MS,
    }
    figures["target_met"] = figures["added_ms_median"] < TARGET_MS
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"limits enforced with {enforcer.name}; {args.runs} paired sandboxed launches of `python -c pass`"
        )
        print(f"  with limits    median {figures['with_limits_ms_median']:7.1f} ms")
        print(f"  without limits median {figures['without_ms_median']:7.1f} ms")
        print(
            f"  added          median {figures['added_ms_median']:7.1f} ms (max {figures['added_ms_max']} ms)"
        )
        verdict = "met" if figures["target_met"] else "MISSED"
        print(f"target: under {TARGET_MS:.0f} ms added: {verdict}")
    return 0 if figures["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
