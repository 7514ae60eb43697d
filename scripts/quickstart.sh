#!/usr/bin/env bash
# Install asr into .venv and transcribe the sample recording with the bundled English model
# (data/models/en-default: BiLSTM-CTC, 4-gram LM beam search), no download needed.
#   bash scripts/quickstart.sh
#   .venv/bin/asr transcribe your.wav more/    # then your own files or folders
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/asr transcribe data/samples/sample.wav
