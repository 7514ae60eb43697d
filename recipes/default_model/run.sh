#!/usr/bin/env bash
# The bundled English model (data/models/en-default), from the data to the model folder:
# configuration E (recipes/default_model/README.md), chosen on three validation speakers.
#   bash recipes/default_model/run.sh            # every stage, from the repository root
#   STAGE=3 bash recipes/default_model/run.sh    # from stage 3 on
#   RESUME=1 STAGE=2 bash recipes/default_model/run.sh   # continue an interrupted training
# Training takes about 40 min on 2 CPU cores (the feature cache, 48 s then 192 s batches;
# issue 20 in the README), plus 96 s to build the cache the first time; run it with nohup,
# alone on the machine (a second busy process slows the training loop down many times).
set -euo pipefail

ASR=${ASR:-python -m asr}
STAGE=${STAGE:-1}  # 1 data, 2 train E, 3 LM, 4 model folder, 5 evaluate
STOP_STAGE=${STOP_STAGE:-5}
SHARED=${SHARED:-../shared/data/mini_librispeech}
GUTENBERG=${GUTENBERG:-../shared/data/gutenberg/books ../shared/data/gutenberg_extra/books}
CONFIGS=recipes/default_model/configs
CHECKPOINT=${CHECKPOINT:-model.pt}  # E's best epoch (20; the average of the last 5 was 0.1 worse)
OUT=${OUT:-exp/en-e}  # the model folder
SHIP=${SHIP:-0}  # 1: stage 4 also copies it to data/models/en-default
RESUME=${RESUME:-0}
VALID=data/manifests/mini_spk/held_out.jsonl
resume=()
((RESUME)) && resume=(--resume)

if ((STAGE <= 1 && 1 <= STOP_STAGE)); then
    # Manifests (durations from the headers); three whole training speakers (both sexes)
    # held out for choosing configurations, checkpoints and decoding weights. dev/ is only
    # ever the report.
    $ASR data prepare librispeech --root "$SHARED" --subsets train dev --out data/manifests/mini
    $ASR data split data/manifests/mini/train.jsonl --speakers 1898 3242 6272 \
        --out-dir data/manifests/mini_spk
fi
if ((STAGE <= 2 && 2 <= STOP_STAGE)); then  # configuration E: x3, phone head, aug, 20 epochs
    $ASR train --config $CONFIGS/e_x3_aux.toml --exp-dir exp/dm_e "${resume[@]}"
fi
if ((STAGE <= 3 && 3 <= STOP_STAGE)); then
    # Word 4-gram from both Gutenberg folders (1,104 books, 68.7M words; the books dev/
    # speakers read are left out), pruned to fit the folder: 26 MB at 8 bits (~4 min).
    # shellcheck disable=SC2086
    $ASR lm prepare-text $GUTENBERG --exclude-ids 3659,14851,135 --out exp/lm/text_big.txt
    $ASR lm build --text exp/lm/text_big.txt --order 4 --prune 0 2 4 6 --vocab-size 100000 \
        --memory 8G --quantize 8 --out exp/lm/big
fi
if ((STAGE <= 4 && 4 <= STOP_STAGE)); then
    # fp16 weights + ONNX graph (the light runtime's) + LM + lexicon; LM weight and word
    # score tuned on the validation speakers at the shipped beam 100 (recipe README: rows
    # "E search" and "E + big LM").
    $ASR export "exp/dm_e/$CHECKPOINT" --out "$OUT" --half --onnx --lm exp/lm/big
    $ASR decode tune "$OUT" "$VALID" --beam-size 100 --lm-weights 1.25 1.5 1.75 2 \
        --word-scores -1 -0.5 0 0.5
    if ((SHIP)); then
        rm -rf data/models/en-default && mkdir -p data/models/en-default/lm
        cp "$OUT/model.pt" "$OUT/model.onnx" "$OUT/decoding.json" data/models/en-default/
        cp "$OUT"/lm/{lm.bin,lexicon.txt,lm.json} data/models/en-default/lm/
    fi
fi
if ((STAGE <= 5 && 5 <= STOP_STAGE)); then
    for split in valid dev; do
        manifest=$VALID
        [[ $split == dev ]] && manifest=data/manifests/mini/dev.jsonl
        $ASR evaluate "$manifest" --model "$OUT" --decoder greedy --out-dir "exp/eval_e/$split-greedy"
        $ASR evaluate "$manifest" --model "$OUT" --out-dir "exp/eval_e/$split-lm"
    done
fi
