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
fi
exec .venv/bin/pytest "$@"
