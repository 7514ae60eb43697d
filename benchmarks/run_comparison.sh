#!/usr/bin/env bash
# The README's comparison table in one command: pocketsphinx 5.1.1 against this project's
# model (greedy, beam without LM, beam with LM) on the same files, scored the same way.
#   bash benchmarks/run_comparison.sh                 # the bundled model
#   MODEL=exp/en-default bash benchmarks/run_comparison.sh
# Test sets: the shared Mini LibriSpeech dev/ split (3 speakers, 117 utterances), and a
# synthetic one: the dev transcripts (their books are excluded from the LM, and no synthetic
# speech is in the bundled model's training data) read by flite and espeak-ng voices.
set -euo pipefail

PY=${PYTHON:-python}
MODEL=${MODEL:-data/models/en-default}
SHARED=${SHARED:-../shared/data/mini_librispeech}
OUT=${OUT:-exp/comparison}
VOICES=${VOICES:-flite:slt flite:awb espeak-ng:en-us+f3 espeak-ng:en-gb+m3}

mkdir -p "$OUT"
$PY -m asr data prepare librispeech --root "$SHARED" --subsets dev --out "$OUT/manifests"

# One utterance per paragraph: asr data synth splits text at blank lines and sentence ends.
$PY - "$OUT/manifests/dev.jsonl" "$OUT/synth_text.txt" <<'PYEOF'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
with open(sys.argv[2], "w") as out:
    out.writelines(f"{entry['text'].lower()}.\n\n" for entry in lines)
PYEOF
# shellcheck disable=SC2086
$PY -m asr data synth --text "$OUT/synth_text.txt" --out "$OUT/synth" --voices $VOICES \
    --max-words 200 --seed 1

for test in dev synth; do
    manifest=$OUT/manifests/dev.jsonl
    [[ $test == synth ]] && manifest=$OUT/synth/manifest.jsonl
    $PY benchmarks/compare_pocketsphinx.py --manifest "$manifest" --model "$MODEL" \
        --json "$OUT/$test.json"
done
