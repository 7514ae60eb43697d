#!/usr/bin/env bash
# Create .venv (if missing) and install asr into it from the lock (requirements.lock), so no
# upstream release can change what gets installed.
#   bash scripts/setup.sh            # everything: training (torch), the server, the test tools
#   bash scripts/setup.sh --light    # the light runtime only (onnxruntime, no torch) + the server
#   bash scripts/setup.sh --system   # everything, and the Debian packages the tests use (root):
#                                    # espeak-ng, flite, festival voices, KenLM, Chromium
# Bump the lock (README, "Installs"): edit pyproject.toml, then
#   uv pip compile pyproject.toml --extra train --extra dev --extra serve --extra media --python-version 3.11 \
#       --no-annotate -o requirements.lock
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# The build backend from the lock too (no isolated build that fetches the newest setuptools).
"${pip[@]}" -c requirements.lock setuptools
if [[ "$mode" == "--light" ]]; then
    "${pip[@]}" -c requirements.lock --no-build-isolation -e '.[serve]'
    exit 0
fi
# torch and torchaudio are pinned to one matching release in pyproject.toml (torchaudio's
# wheel does not declare its torch); pip's default torch wheel is a CUDA build that also runs
# on the CPU.
"${pip[@]}" -r requirements.lock
"${pip[@]}" -c requirements.lock --no-build-isolation --no-deps -e '.[train,dev,serve,media]'
if [[ "$mode" == "--system" ]]; then
    for step in .ci/install.d/*.sh; do
        bash "$step"
    done
fi
