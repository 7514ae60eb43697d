#!/usr/bin/env bash
# Synthetic speech, fully offline: speak public-domain books with espeak-ng, flite and
# festival, train on some voices, evaluate on voices held out from training.
#   bash recipes/synthetic/run.sh              # every stage, from the repository root
#   STAGE=3 bash recipes/synthetic/run.sh      # resume from stage 3 (train)
#   STOP_STAGE=1 bash recipes/synthetic/run.sh # only stage 1 (synthesis)
# Scale and inputs are environment variables (defaults below); e.g. the small run in the
# README: NUM_TRAIN=600 NUM_DEV=60 NUM_TEST=120 TRAIN_SET="optim.epochs=8 ..." bash ...
set -euo pipefail

ASR=${ASR:-python -m asr}
STAGE=${STAGE:-1}  # first stage: 1 synth, 2 check, 3 train, 4 evaluate
STOP_STAGE=${STOP_STAGE:-4}  # last stage
DATA=${DATA:-data/synth}
EXP=${EXP:-exp/synthetic}
CONFIG=${CONFIG:-recipes/synthetic/config.toml}
NUM_TRAIN=${NUM_TRAIN:-6000}
NUM_DEV=${NUM_DEV:-300}
NUM_TEST=${NUM_TEST:-600}
JOBS=${JOBS:-0}  # synthesis workers (0: one per core)
CHECK_JOBS=${CHECK_JOBS:-2}  # asr data check workers
BOOKS=${BOOKS:-../shared/data/gutenberg/books}
# Train, dev and test sentences come from different books, so no sentence is shared.
TRAIN_TEXT=${TRAIN_TEXT:-"$BOOKS/pg35.txt $BOOKS/pg36.txt $BOOKS/pg159.txt $BOOKS/pg456.txt $BOOKS/pg126.txt $BOOKS/pg834.txt"}
DEV_TEXT=${DEV_TEXT:-$BOOKS/pg43.txt}
TEST_TEXT=${TEST_TEXT:-$BOOKS/pg372.txt}
# The test voices are never heard in training (dev uses the training voices).
TRAIN_VOICES=${TRAIN_VOICES:-"espeak-ng:en-us+m1 espeak-ng:en-us+f3 espeak-ng:en-gb+m3 espeak-ng:en-gb-scotland+m2 espeak-ng:en-029+m4 espeak-ng:en-gb-x-gbclan+m7 flite:kal16 flite:awb festival:kal_diphone"}
TEST_VOICES=${TEST_VOICES:-"espeak-ng:en-gb+f2 espeak-ng:en-gb-x-rp+f4 flite:rms flite:slt festival:cmu_us_slt_arctic_hts"}
TRAIN_SET=${TRAIN_SET:-}  # extra "key=value" overrides for asr train, space-separated

for f in $TRAIN_TEXT $DEV_TEXT $TEST_TEXT; do
    [[ -f $f ]] || { echo "run.sh: no text file $f (set BOOKS or TRAIN_TEXT/DEV_TEXT/TEST_TEXT)" >&2; exit 2; }
done

if ((STAGE <= 1 && 1 <= STOP_STAGE)); then
    # shellcheck disable=SC2086  # word lists on purpose
    $ASR data synth --text $TRAIN_TEXT --voices $TRAIN_VOICES --num "$NUM_TRAIN" --seed 0 --jobs "$JOBS" --out "$DATA/train"
    $ASR data synth --text $DEV_TEXT --voices $TRAIN_VOICES --num "$NUM_DEV" --seed 1 --jobs "$JOBS" --out "$DATA/dev"
    $ASR data synth --text $TEST_TEXT --voices $TEST_VOICES --num "$NUM_TEST" --seed 2 --jobs "$JOBS" --out "$DATA/test"
fi

if ((STAGE <= 2 && 2 <= STOP_STAGE)); then
    for split in train dev test; do
        # Exit status 1: problems found, listed, and dropped from clean.jsonl; 2: an error.
        $ASR data check "$DATA/$split/manifest.jsonl" --config "$CONFIG" --jobs "$CHECK_JOBS" \
            --write-clean "$DATA/$split/clean.jsonl" || (($? == 1))
    done
fi

if ((STAGE <= 3 && 3 <= STOP_STAGE)); then
    overrides=(--set "data.train_manifest=$DATA/train/clean.jsonl" --set "data.valid_manifest=$DATA/dev/clean.jsonl")
    for kv in $TRAIN_SET; do overrides+=(--set "$kv"); done
    $ASR train --config "$CONFIG" --exp-dir "$EXP" "${overrides[@]}"
fi

if ((STAGE <= 4 && 4 <= STOP_STAGE)); then
    $ASR evaluate "$DATA/test/clean.jsonl" --model "$EXP" --device cpu --out-dir "$EXP/eval_test"
    $ASR evaluate "$DATA/dev/clean.jsonl" --model "$EXP" --device cpu --out-dir "$EXP/eval_dev"
fi
