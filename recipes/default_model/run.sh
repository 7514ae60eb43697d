#!/usr/bin/env bash
# The bundled English model (data/models/en-default), from the data to the model folder:
# configuration N (E's recipe from scratch with the CTC-CRF loss), then O (N fine-tuned with
# CTC-CRF and per-utterance normalization), chosen with its decoding weights on three
# validation speakers; then the same two trainings on all 22 speakers (direction 4), which
# ship with O's decoding weights (recipes/default_model/README.md, issue 21).
#   bash recipes/default_model/run.sh            # every stage, from the repository root
#   STAGE=3 bash recipes/default_model/run.sh    # from stage 3 on
#   RESUME=1 STAGE=2 STOP_STAGE=2 bash recipes/default_model/run.sh   # continue N's training
# Training takes about 50 min (N: the feature cache, 48 s then 192 s batches) plus 10 min
# (O) on 2 CPU cores, then about 60 + 15 min on all 22 speakers, and 96 s to build the cache
# the first time; run it with nohup, alone on the machine (a second busy process slows the
# training loop down many times).
# tests/test_recipes.py runs every stage on a tiny corpus (the variables below).
set -euo pipefail

ASR=${ASR:-python -m asr}
STAGE=${STAGE:-1}  # 1 data, 2 N, 3 O, 4 LM, 5 O's folder, 6 N on 22, 7 O on 22, 8 folder, 9 evaluate
# issue 32 (every voice): 10 speechocean762 data, 11 Q, 12 Q2, 13 R, 14 folders, tuning, reports,
# 15 Q3 (Q2 + VTLP), 16 its folder and reports, 17 Q4 (Q2 + an utterance summary), 18 its folder;
# direction 4 (not run by default: SKIP="" STAGE=19 STOP_STAGE=20): 19 a word LSTM LM (40 min)
# and n-best rescoring, 20 a less pruned 4-gram (79 MB) in place of the folder's;
# 21 Q5 (Q4 + room, noise and band augmentation), 22 its folder and reports, 23 T (en-stream:
# the streaming model on Q2's phones and both corpora), 24 its folder, offline and streamed
STOP_STAGE=${STOP_STAGE:-24}
SKIP=${SKIP:-19 20}  # stages not run unless asked for
SHARED=${SHARED:-../shared/data/mini_librispeech}
GUTENBERG=${GUTENBERG:-../shared/data/gutenberg/books ../shared/data/gutenberg_extra/books}
CONFIGS=recipes/default_model/configs
MANIFESTS=${MANIFESTS:-data/manifests}
EXP=${EXP:-exp}
SPEAKERS=${SPEAKERS:-1898 3242 6272}  # the validation speakers (both sexes)
TRAIN_SET=${TRAIN_SET:-}  # extra "key=value" overrides for both trainings, space-separated
LM_BUILD=${LM_BUILD:---order 4 --prune 0 2 4 6 --vocab-size 100000 --memory 8G --quantize 8}
LM_WEIGHTS=${LM_WEIGHTS:-1.5 2 2.5}
WORD_SCORES=${WORD_SCORES:--4 -3 -2}
O_OUT=${O_OUT:-$EXP/en-o}  # O's folder: it chooses the decoding weights
OUT=${OUT:-$EXP/en-default-22}  # the model folder that ships
SHIP=${SHIP:-0}  # 1: stage 8 also copies it to data/models/en-default
RESUME=${RESUME:-0}
SO762=${SO762:-../shared/data/speechocean762/train}  # Kaldi layout: wav.scp text utt2spk spk2gender
# Q starts from P-22 (P on 22 speakers), en-phones until Q2 and then Q4 replaced it; its
# folder with `git show 2ef9b44:data/models/en-phones/model.pt > exp/en-p22/model.pt` (and
# the lm/ and decoding.json beside it), then PHONES=exp/en-p22. The folders' LM and decoding
# weights are the same in every en-phones since P-22.
PHONES=${PHONES:-data/models/en-phones}
SO762_WEIGHTS=${SO762_WEIGHTS:-2 2.5 3}
SO762_SCORES=${SO762_SCORES:--1 0 1 2}
VALID=$MANIFESTS/mini_spk/held_out.jsonl
DEV=$MANIFESTS/mini/dev.jsonl
resume=()
((RESUME)) && resume=(--resume)
stage() {  # whether stage $1 runs: within STAGE..STOP_STAGE and not in SKIP
    ((STAGE <= $1 && $1 <= STOP_STAGE)) && [[ " $SKIP " != *" $1 "* ]]
}
start_from() {  # a fine-tuning starts from checkpoint $1, or continues (RESUME=1): $start
    if ((RESUME)); then start=(--resume); else start=(--init-from "$1"); fi
}
sets=(--set "data.valid_manifest=\"$VALID\"")
for item in $TRAIN_SET; do sets+=(--set "$item"); done
spk=(--set "data.train_manifest=\"$MANIFESTS/mini_spk/train.jsonl\"" "${sets[@]}")  # 19 speakers
all=(--set "data.train_manifest=\"$MANIFESTS/mini/train.jsonl\"" "${sets[@]}")  # all 22

if stage 1; then
    # Manifests (durations from the headers); three whole training speakers held out for
    # choosing configurations, checkpoints and decoding weights. dev/ is only the report.
    $ASR data prepare librispeech --root "$SHARED" --subsets train dev --out "$MANIFESTS/mini"
    # shellcheck disable=SC2086
    $ASR data split "$MANIFESTS/mini/train.jsonl" --speakers $SPEAKERS --out-dir "$MANIFESTS/mini_spk"
fi
if stage 2; then  # N: E's recipe, CTC-CRF from scratch, 20 epochs
    $ASR train --config $CONFIGS/n_crf_scratch.toml --exp-dir "$EXP/dm_crf" "${spk[@]}" "${resume[@]}"
fi
if stage 3; then  # O: N + 6 CTC-CRF epochs, per-utterance norm
    start_from "$EXP/dm_crf/averaged.pt"
    $ASR train --config $CONFIGS/o_crf_utt_ft.toml --exp-dir "$EXP/ft_crf_n_utt" \
        "${spk[@]}" "${start[@]}"
fi
if stage 4; then
    # Word 4-gram from both Gutenberg folders (1,104 books, 68.7M words; the books dev/
    # speakers read are left out), pruned to fit the folder: 26 MB at 8 bits (~4 min).
    # shellcheck disable=SC2086
    $ASR lm prepare-text $GUTENBERG --exclude-ids 3659,14851,135 --out "$EXP/lm/text_big.txt"
    # shellcheck disable=SC2086
    $ASR lm build --text "$EXP/lm/text_big.txt" $LM_BUILD --out "$EXP/lm/big"
fi
if stage 5; then
    # O's folder: fp16 weights + ONNX graph (the light runtime's) + LM + lexicon; the trie
    # holds the 30k commonest words; LM weight and word score tuned on the validation
    # speakers at beam 100.
    $ASR export "$EXP/ft_crf_n_utt/averaged.pt" --out "$O_OUT" --half --onnx --lm "$EXP/lm/big"
    # shellcheck disable=SC2086
    $ASR decode tune "$O_OUT" "$VALID" --beam-size 100 --lexicon-words 30000 \
        --lm-weights $LM_WEIGHTS --word-scores $WORD_SCORES
fi
if stage 6; then  # N's recipe on all 22 speakers
    $ASR train --config $CONFIGS/n_crf_scratch.toml --exp-dir "$EXP/dm_crf_all22" "${all[@]}" "${resume[@]}"
fi
if stage 7; then  # O's fine-tuning on all 22 speakers
    start_from "$EXP/dm_crf_all22/averaged.pt"
    $ASR train --config $CONFIGS/o_crf_utt_ft.toml --exp-dir "$EXP/ft_crf_all22_utt" \
        "${all[@]}" "${start[@]}"
fi
if stage 8; then
    # The folder that ships: the 22-speaker weights with O's decoding weights (no speakers
    # are left to choose with).
    $ASR export "$EXP/ft_crf_all22_utt/averaged.pt" --out "$OUT" --half --onnx --lm "$EXP/lm/big"
    cp "$O_OUT/decoding.json" "$OUT/decoding.json"
    if ((SHIP)); then
        rm -rf data/models/en-default && mkdir -p data/models/en-default/lm
        cp "$OUT/model.pt" "$OUT/model.onnx" "$OUT/decoding.json" data/models/en-default/
        cp "$OUT"/lm/{lm.bin,lexicon.txt,lm.json} data/models/en-default/lm/
    fi
fi
if stage 9; then
    for split in valid dev; do  # O on both sets; the shipped folder on dev only
        manifest=$VALID
        [[ $split == dev ]] && manifest=$DEV
        $ASR evaluate "$manifest" --model "$O_OUT" --decoder greedy --out-dir "$EXP/eval_o/$split-greedy"
        $ASR evaluate "$manifest" --model "$O_OUT" --out-dir "$EXP/eval_o/$split-lm"
    done
    $ASR evaluate "$DEV" --model "$OUT" --out-dir "$EXP/eval_all22/dev-lm"
fi
# Issue 32, direction 2 (more voices): Mini LibriSpeech's 22 speakers + speechocean762's
# non-native adults and teenagers. Its validation speakers (the rule, committed before any
# training): speaker ids sorted, every 6th from the first (13 of 73). Its own test split and
# children stay withheld.
SO_VALID=$MANIFESTS/so762_spk/held_out.jsonl
if stage 10; then
    $ASR data prepare kaldi --root "$SO762" --out "$MANIFESTS/so762" --name so762
    # shellcheck disable=SC2046
    $ASR data split "$MANIFESTS/so762/so762.jsonl" --out-dir "$MANIFESTS/so762_spk" \
        --speakers $(awk '{print $1}' "$SO762/spk2gender" | sort | awk 'NR % 6 == 1')
    mkdir -p "$MANIFESTS/mix" "$MANIFESTS/mix2"
    cat "$MANIFESTS/mini/train.jsonl" "$MANIFESTS/so762_spk/train.jsonl" >"$MANIFESTS/mix/train.jsonl"
    # Q2's: speechocean762's training speakers twice
    cat "$MANIFESTS/mix/train.jsonl" "$MANIFESTS/so762_spk/train.jsonl" >"$MANIFESTS/mix2/train.jsonl"
fi
so=(--set "data.valid_manifest=\"$SO_VALID\"")
for item in $TRAIN_SET; do so+=(--set "$item"); done
if stage 11; then  # Q: the phone model + 6 epochs on both corpora
    start_from "$PHONES/model.pt"
    $ASR train --config $CONFIGS/q_phones_so762_ft.toml --exp-dir "$EXP/ft_ph_so762" \
        --set "data.train_manifest=\"$MANIFESTS/mix/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 12; then  # Q2: Q + 5 epochs, speechocean762 weighted x2
    start_from "$EXP/ft_ph_so762/averaged.pt"
    $ASR train --config $CONFIGS/q2_phones_so762x2_ft.toml --exp-dir "$EXP/ft_ph_so762x2" \
        --set "data.train_manifest=\"$MANIFESTS/mix2/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 13; then  # R: en-default (characters) + O's 6 epochs on both
    start_from "$OUT/model.pt"
    $ASR train --config $CONFIGS/r_chars_so762_ft.toml --exp-dir "$EXP/ft_ch_so762" \
        --set "data.train_manifest=\"$MANIFESTS/mix/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
folder_and_reports() {  # name, run folder under $EXP, parent folder (LM, decoding weights)
    local name=$1 dir=$2 parent=$3
    $ASR export "$EXP/$dir/averaged.pt" --out "$EXP/en-$name" --half --onnx --lm "$parent/lm"
    cp "$parent/decoding.json" "$EXP/en-$name/decoding.json"
    for set in so762:"$SO_VALID" dev:"$DEV"; do
        $ASR evaluate "${set#*:}" --model "$EXP/en-$name" --out-dir "$EXP/eval_so762/$name-${set%%:*}"
    done
    # shellcheck disable=SC2086
    $ASR decode tune "$EXP/en-$name" "$SO_VALID" --beam-size 100 --lexicon-words 30000 \
        --lm-weights $SO762_WEIGHTS --word-scores $SO762_SCORES
    for set in so762:"$SO_VALID" dev:"$DEV"; do
        $ASR evaluate "${set#*:}" --model "$EXP/en-$name" --out-dir "$EXP/eval_so762/$name-tuned-${set%%:*}"
    done
}
if stage 14; then
    # Folders with their parent's LM; the phone folders keep en-phones' decoding weights (the
    # "shipped weights" rows), then LM weight x word score tuned on the speechocean762
    # validation speakers; each folder on both validation sets and dev.
    for run in q:ft_ph_so762:"$PHONES" q2:ft_ph_so762x2:"$PHONES" r:ft_ch_so762:"$OUT"; do
        IFS=: read -r name dir parent <<<"$run"
        folder_and_reports "$name" "$dir" "$parent"
    done
fi
if stage 15; then  # Q3: Q2 with VTLP, from the same start
    start_from "$EXP/ft_ph_so762/averaged.pt"
    $ASR train --config $CONFIGS/q3_phones_so762x2_vtlp_ft.toml --exp-dir "$EXP/ft_ph_so762x2_vtlp" \
        --set "data.train_manifest=\"$MANIFESTS/mix2/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 16; then
    folder_and_reports q3 ft_ph_so762x2_vtlp "$PHONES"
fi
if stage 17; then  # Q4: Q2 with an utterance summary, same start
    start_from "$EXP/ft_ph_so762/averaged.pt"
    $ASR train --config $CONFIGS/q4_phones_so762x2_summary_ft.toml \
        --exp-dir "$EXP/ft_ph_so762x2_summary" \
        --set "data.train_manifest=\"$MANIFESTS/mix2/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 18; then
    folder_and_reports q4 ft_ph_so762x2_summary "$PHONES"
fi
if stage 19; then  # a word LSTM LM rescoring en-phones' 16-best
    python recipes/rnnlm/train.py --text "$EXP/lm/text_big.txt" --out "$EXP/rnnlm" --minutes 40
    python benchmarks/rescore.py --rnnlm "$EXP/rnnlm/rnnlm.pt" --model "$PHONES" \
        --tune "$MANIFESTS/so762_spk/held_out.jsonl" \
        --test "$DEV" "$MANIFESTS/so762_spk/held_out.jsonl" --json "$EXP/rescore.json"
fi
if stage 20; then  # a bigger n-gram: count-1 n-grams pruned only
    $ASR lm build --text "$EXP/lm/text_big.txt" --order 4 --prune 0 1 1 1 \
        --vocab-size 100000 --memory 8G --quantize 8 --out "$EXP/lm/big_less_pruned"
    for manifest in "$DEV" "$MANIFESTS/so762_spk/held_out.jsonl"; do
        $ASR evaluate "$manifest" --model "$PHONES" --lm "$EXP/lm/big_less_pruned/lm.bin" \
            --lexicon "$PHONES/lm/lexicon.txt" \
            --out-dir "$EXP/bigngram/$(basename "$(dirname "$manifest")")"
    done
fi
if stage 21; then  # Q5: Q4 with a room, noise and a band on 30% of the utterances each
    start_from "$EXP/ft_ph_so762/averaged.pt"
    $ASR train --config $CONFIGS/q5_phones_so762x2_room_ft.toml --exp-dir "$EXP/ft_ph_so762x2_room" \
        --set "data.train_manifest=\"$MANIFESTS/mix2/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 22; then
    folder_and_reports q5 ft_ph_so762x2_room "$PHONES"
fi
if stage 23; then  # T: Q2 as a streaming model (S's chunks and causal normalization)
    start_from "$EXP/ft_ph_so762x2/averaged.pt"
    $ASR train --config $CONFIGS/t_stream_phones_so762x2_ft.toml --exp-dir "$EXP/ft_stream_phones" \
        --set "data.train_manifest=\"$MANIFESTS/mix2/train.jsonl\"" "${so[@]}" "${start[@]}"
fi
if stage 24; then  # T's folder with en-phones' LM and weights; offline, then streamed
    folder_and_reports t ft_stream_phones "$PHONES"
    cp "$PHONES/decoding.json" "$EXP/en-t/decoding.json"  # the shipped weights again
    for set in so762:"$SO_VALID" dev:"$DEV"; do
        python benchmarks/stream.py --manifest "${set#*:}" --model "$EXP/en-t" \
            --latency-utterances 12 --streams 1 | tee "$EXP/eval_so762/t-stream-${set%%:*}.txt"
    done
fi
