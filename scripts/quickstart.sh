#!/usr/bin/env bash
# Install the light runtime into .venv (onnxruntime, no torch; versions from requirements.lock)
# and transcribe the sample recording with the bundled default model (data/models/en-phones:
# a BiLSTM emitting phones, lexicon and 4-gram LM beam search), no download needed. pip's output goes to
# .venv/quickstart-install.log; the transcript is what it prints.
#   bash scripts/quickstart.sh
#   .venv/bin/asr transcribe your.wav more/    # then your own files or folders
#   bash scripts/setup.sh                      # later: training and the tests (torch)
set -euo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp)"
echo "quickstart: installing the light runtime into .venv (log: .venv/quickstart-install.log)" >&2
if ! bash scripts/setup.sh --light >"$log" 2>&1; then
    cat "$log" >&2
    echo "quickstart: the install failed (above)" >&2
    exit 1
fi
mv "$log" .venv/quickstart-install.log
.venv/bin/asr transcribe data/samples/sample.wav
