#!/usr/bin/env bash
# Mini LibriSpeech: train on train-clean-5 (5 h), evaluate on dev-clean-2.
#   bash recipes/mini_librispeech/run.sh                 # every stage, from the repository root
#   STAGE=3 bash recipes/mini_librispeech/run.sh         # resume from stage 3 (train)
#   STOP_STAGE=2 bash recipes/mini_librispeech/run.sh    # prepare and check only
#   STAGE=3 RESUME=1 bash recipes/mini_librispeech/run.sh  # continue an interrupted training
# Uses ../shared/data/mini_librispeech (train/ and dev/) when present, else downloads
# train-clean-5 and dev-clean-2 from OpenSLR 31 into data/corpora (checksum-verified).
set -euo pipefail

ASR=${ASR:-python -m asr}
STAGE=${STAGE:-1}  # first stage: 1 prepare, 2 check, 3 train, 4 evaluate
STOP_STAGE=${STOP_STAGE:-4}  # last stage
SHARED=${SHARED:-../shared/data/mini_librispeech}
CORPORA=${CORPORA:-data/corpora}
MANIFESTS=${MANIFESTS:-data/manifests/mini_librispeech}
EXP=${EXP:-exp/mini_librispeech}
CONFIG=${CONFIG:-recipes/mini_librispeech/config.toml}
CHECK_JOBS=${CHECK_JOBS:-2}
TRAIN_SET=${TRAIN_SET:-}  # extra "key=value" overrides for asr train, space-separated
HELD_OUT=${HELD_OUT:-64}  # training utterances held out for checkpoint selection
RESUME=${RESUME:-0}  # 1: stage 3 continues from $EXP/last.pt (mid-epoch) instead of starting

if ((STAGE <= 1 && 1 <= STOP_STAGE)); then
    if [[ -d $SHARED/train && -d $SHARED/dev ]]; then
        $ASR data prepare librispeech --root "$SHARED" --subsets train dev --out "$MANIFESTS"
    else
        $ASR data prepare librispeech --download --root "$CORPORA" \
            --subsets train-clean-5 dev-clean-2 --out "$MANIFESTS"
        mv "$MANIFESTS/train-clean-5.jsonl" "$MANIFESTS/train.jsonl"
        mv "$MANIFESTS/dev-clean-2.jsonl" "$MANIFESTS/dev.jsonl"
    fi
fi

if ((STAGE <= 2 && 2 <= STOP_STAGE)); then
    for split in train dev; do
        # Exit status 1: problems found, listed, and dropped from the clean manifest.
        $ASR data check "$MANIFESTS/$split.jsonl" --config "$CONFIG" --jobs "$CHECK_JOBS" \
            --write-clean "$MANIFESTS/$split.clean.jsonl" || (($? == 1))
    done
fi

if ((STAGE <= 3 && 3 <= STOP_STAGE)); then
    # Checkpoints are chosen on utterances held out of train/, never on dev/.
    $ASR data split "$MANIFESTS/train.clean.jsonl" --held-out "$HELD_OUT" --seed 0 \
        --out-dir "$MANIFESTS/split"
    overrides=(--set "data.train_manifest=$MANIFESTS/split/train.jsonl"
               --set "data.valid_manifest=$MANIFESTS/split/held_out.jsonl")
    for kv in $TRAIN_SET; do overrides+=(--set "$kv"); done
    ((RESUME)) && overrides+=(--resume)
    $ASR train --config "$CONFIG" --exp-dir "$EXP" "${overrides[@]}"
fi

if ((STAGE <= 4 && 4 <= STOP_STAGE)); then
    $ASR evaluate "$MANIFESTS/dev.clean.jsonl" --model "$EXP" --out-dir "$EXP/eval_dev"
fi
