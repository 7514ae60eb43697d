#!/usr/bin/env bash
# Install asr, train the tiny quickstart model on a generated tone corpus (one chord per
# character, not speech) in about a minute, and transcribe with it: the whole pipeline.
#   bash scripts/train_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
asr data tones --out exp/quickstart/tones --num 8 --seed 3
asr train --config recipes/quickstart/config.toml --exp-dir exp/quickstart
asr transcribe exp/quickstart/tones/wav --model exp/quickstart
