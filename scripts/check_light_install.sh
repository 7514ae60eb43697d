#!/usr/bin/env bash
# The light install on its own: a fresh venv with `pip install .` (versions from the lock)
# transcribes the sample with the bundled model, from the CLI and the API, and never
# imports torch. CI runs it (.ci/run); it takes about half a minute.
#   bash scripts/check_light_install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
log="$(dirname "$venv")/install.log"
if ! { "${pip[@]}" -c requirements.lock setuptools &&
    "${pip[@]}" -c requirements.lock --no-build-isolation .; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "check_light_install: pip install . failed (above)" >&2
    exit 1
fi
cd "$(dirname "$venv")"  # away from the source tree: the installed package, not ./asr
"$venv/bin/asr" transcribe "$OLDPWD/data/samples/sample.wav" | tee cli.txt
"$venv/bin/asr" transcribe --stream --fast "$OLDPWD/data/samples/sample.wav" \
    --model "$OLDPWD/data/models/en-stream" 2>/dev/null | tee stream.txt
"$venv/bin/python" - "$OLDPWD/data/samples/sample.wav" "$OLDPWD/data/models/en-stream" <<'PY'
import sys

import asr
from asr.audio import load_audio

text = asr.load_model().transcribe([sys.argv[1]])[0].text
assert text.strip(), "empty transcript"
stream = asr.load_model(sys.argv[2]).stream()  # the streaming folder's ONNX step, no torch
events = stream.accept(load_audio(sys.argv[1])) + stream.finish()
assert any(e.kind == "final" and e.text for e in events), "the stream said nothing"
assert asr.__file__.startswith(sys.prefix), f"asr imported from {asr.__file__}, not the venv"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchaudio", "librosa"})
assert not loaded, f"the light install imported {loaded[:5]}"
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise AssertionError("torch is installed in the light venv")
print(f"check_light_install: API transcript {text!r}, streamed too; torch neither installed nor imported")
PY
test -s cli.txt
test -s stream.txt
