#!/usr/bin/env bash
# Create .venv (if missing) and install asr into it, with training and the test tools.
#   bash scripts/setup.sh            # Python packages only
#   bash scripts/setup.sh --system   # also the Debian packages the tests use (root):
#                                    # espeak-ng, flite, festival voices, KenLM's lmplz/build_binary
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q --upgrade pip
# The train extra adds torch and torchaudio (pinned to one release in pyproject.toml:
# torchaudio does not declare its torch; pip's default wheels are CUDA builds that also run
# on the CPU) to the light runtime; `pip install .` alone transcribes without torch.
python -m pip install -q -e '.[train,dev,serve]'
if [[ "${1:-}" == "--system" ]]; then
    for step in .ci/install.d/*.sh; do
        bash "$step"
    done
fi
