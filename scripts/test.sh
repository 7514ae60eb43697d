#!/usr/bin/env bash
# Set up everything the tests need (Python packages, synthesizers, KenLM tools), then run them.
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
# shellcheck disable=SC1091
source .venv/bin/activate
ruff check asr tests benchmarks
python -m pytest "$@"
