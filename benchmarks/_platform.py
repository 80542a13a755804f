"""What the benchmarks share: driving a throw-away platform through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NSML = str(Path(sys.executable).with_name("nsml"))
CLI_TIMEOUT_S = 120.0


def log(message: str) -> None:
    """Progress goes to stderr, so stdout stays the result (table or --json)."""
    print(message, file=sys.stderr, flush=True)


def cli(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = CLI_TIMEOUT_S) -> str:
    """Run ``nsml ARGS``; its stdout, or an error carrying its one-line message."""
    done = subprocess.run([NSML, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"nsml {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
