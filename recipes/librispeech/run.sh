#!/usr/bin/env bash
# Full LibriSpeech (960 h) for a GPU machine: download, prepare, check, train, evaluate.
#   bash recipes/librispeech/run.sh                 # every stage, from the repository root
#   STAGE=3 bash recipes/librispeech/run.sh         # resume from stage 3 (train)
#   STOP_STAGE=1 bash recipes/librispeech/run.sh    # download and prepare only
# Archives are fetched from OpenSLR 12 into $CORPORA/downloads (about 60 GB), verified
# against their published SHA-256 and extracted to $CORPORA/LibriSpeech/<subset>.
set -euo pipefail

ASR=${ASR:-python -m asr}
STAGE=${STAGE:-1}  # first stage: 1 download + prepare, 2 check, 3 train, 4 evaluate
STOP_STAGE=${STOP_STAGE:-4}  # last stage
CORPORA=${CORPORA:-data/corpora}
MANIFESTS=${MANIFESTS:-data/manifests/librispeech}
EXP=${EXP:-exp/librispeech}
CONFIG=${CONFIG:-recipes/librispeech/config.toml}
CHECK_JOBS=${CHECK_JOBS:-16}
DOWNLOAD=${DOWNLOAD:---download}  # empty: the subsets are already under $CORPORA
TRAIN_SUBSETS=${TRAIN_SUBSETS:-"train-clean-100 train-clean-360 train-other-500"}
EVAL_SUBSETS=${EVAL_SUBSETS:-"dev-clean dev-other test-clean test-other"}
TRAIN_SET=${TRAIN_SET:-}  # extra "key=value" overrides for asr train, space-separated

if ((STAGE <= 1 && 1 <= STOP_STAGE)); then
    # shellcheck disable=SC2086  # word lists on purpose
    $ASR data prepare librispeech $DOWNLOAD --root "$CORPORA" \
        --subsets $TRAIN_SUBSETS $EVAL_SUBSETS --out "$MANIFESTS"
    # shellcheck disable=SC2086
    (cd "$MANIFESTS" && cat $(printf '%s.jsonl ' $TRAIN_SUBSETS) > train_960.jsonl)
fi

if ((STAGE <= 2 && 2 <= STOP_STAGE)); then
    for split in train_960 $EVAL_SUBSETS; do
        $ASR data check "$MANIFESTS/$split.jsonl" --config "$CONFIG" --jobs "$CHECK_JOBS" \
            --write-clean "$MANIFESTS/$split.clean.jsonl" || (($? == 1))
    done
fi

if ((STAGE <= 3 && 3 <= STOP_STAGE)); then
    overrides=(--set "data.train_manifest=$MANIFESTS/train_960.clean.jsonl"
               --set "data.valid_manifest=$MANIFESTS/dev-clean.clean.jsonl")
    for kv in $TRAIN_SET; do overrides+=(--set "$kv"); done
    $ASR train --config "$CONFIG" --exp-dir "$EXP" "${overrides[@]}"
fi

if ((STAGE <= 4 && 4 <= STOP_STAGE)); then
    for split in $EVAL_SUBSETS; do
        $ASR evaluate "$MANIFESTS/$split.clean.jsonl" --model "$EXP" --out-dir "$EXP/eval_$split"
    done
fi
