#!/usr/bin/env bash
# Set up everything the tests need, then run lint, type checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
echo "== ruff"
.venv/bin/ruff check citywatch tests bench
.venv/bin/ruff format --check citywatch tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
