#!/usr/bin/env bash
# Set up everything the tests need (Python packages, synthesizers, KenLM tools), then run them.
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
# shellcheck disable=SC1091
source .venv/bin/activate
# One clear line, not 9 collection errors, when the pinned pair does not load together.
if ! err="$(python -c 'import torch, torchaudio.functional' 2>&1)"; then
    echo "test.sh: torch and torchaudio do not import together ($(tail -n 1 <<<"$err")); install the pinned pair from requirements.lock" >&2
    exit 1
fi
ruff check asr tests benchmarks
python -m pytest "$@"
