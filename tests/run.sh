#!/usr/bin/env bash
# Runs the whole suite; under CI=true the real data in ../shared must be present.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ] && [ ! -d ../shared/data ]; then
  echo "error: CI=true but ../shared/data is missing; clone the project beside shared/" >&2
  exit 1
fi
mkdir -p test-output
if [ "$#" -eq 0 ]; then  # the whole suite: lint, format and type checks first, as CI enforces them
  echo "ruff check, ruff format --check, mypy"
  .venv/bin/ruff check src tests
  .venv/bin/ruff format --check src tests
  .venv/bin/mypy
  # Two workers, each module whole on one of them (its server and fixtures stay together):
  # most of a test's time is spent waiting for sessions, so this halves the wall time.
  # A worker that dies fails the run at once, naming its test: pytest-xdist 3.8 replaces
  # a dead worker under --dist loadfile and then waits forever for work it never assigns.
  exec .venv/bin/pytest -n 2 --dist loadfile --max-worker-restart=0
fi
exec .venv/bin/pytest "$@"
