#!/usr/bin/env bash
# One row of recipes/default_model/README.md's table, from a finished training run:
# export (fp16, LM beside it), tune the LM weight and word score on the validation speakers,
# then validation and dev WER/CER, greedy and with the LM. Prints the figures and writes
# them under exp/rows/<name>/.
#   bash recipes/default_model/score_row.sh exp/dm_e            # model.pt (best epoch)
#   CHECKPOINT=averaged.pt bash recipes/default_model/score_row.sh exp/dm_e
#   LM=exp/lm/big bash recipes/default_model/score_row.sh exp/dm_e
#   LM_WEIGHTS="0.5 1 1.5 2 2.5 3" WORD_SCORES="-3 -2 -1 0 1 2" ...   # a wider tuning grid
set -euo pipefail

EXP=${1:?usage: score_row.sh EXP_DIR}
ASR=${ASR:-python -m asr}
CHECKPOINT=${CHECKPOINT:-model.pt}
LM=${LM:-data/models/en-default/lm}  # the shipped pruned 4-gram, unless told otherwise
VALID=${VALID:-data/manifests/mini_spk/held_out.jsonl}
DEV=${DEV:-data/manifests/mini/dev.jsonl}
NAME=${NAME:-$(basename "$EXP")-${CHECKPOINT%.pt}}
OUT=exp/rows/$NAME

$ASR export "$EXP/$CHECKPOINT" --out "$OUT/model" --half --lm "$LM"
$ASR decode tune "$OUT/model" "$VALID" --lm-weights ${LM_WEIGHTS:-0.5 1.0 1.5 2.0 2.5} \
    --word-scores ${WORD_SCORES:--2 -1 0 1}
for split in valid dev; do
    manifest=$VALID
    [[ $split == dev ]] && manifest=$DEV
    $ASR evaluate "$manifest" --model "$OUT/model" --decoder greedy --out-dir "$OUT/$split-greedy"
    $ASR evaluate "$manifest" --model "$OUT/model" --out-dir "$OUT/$split-lm"
done
for run in valid-greedy valid-lm dev-greedy dev-lm; do
    echo "$NAME $run: $(tr -d '\n' < "$OUT/$run/summary.json")"
done
