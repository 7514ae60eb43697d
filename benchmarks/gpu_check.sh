#!/usr/bin/env bash
# One check of a CUDA machine with the project installed (scripts/setup.sh): trains the
# shipped recipe's configuration for a few minutes, kills it with SIGKILL and resumes it,
# trains under torchrun, then measures training and transcription throughput, printing each
# figure with the command that produced it. Sized to finish in under 8 minutes on one H200.
#   bash benchmarks/gpu_check.sh                      # cuda, tone corpus, OUT=exp/gpu_check
#   MANIFEST=data/manifests/mini/train.jsonl bash benchmarks/gpu_check.sh   # real speech
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_check.sh   # every step on a CPU in ~1 min (the suite)
# Targets on one H200 (issue 31): N recipe >= 5,000 audio s/s, the 960 h config >= 10,000,
# greedy transcription >= 2,000x real time.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}  # 1: tiny model, few steps (checks the steps, not the figures)
OUT=${OUT:-exp/gpu_check}
MANIFEST=${MANIFEST:-}  # training manifest; default: a tone corpus made here
PY=${PY:-python}
ASR=("$PY" -m asr)
CONFIG=recipes/default_model/configs/n_crf_scratch.toml
BIG=recipes/librispeech/config.toml  # the 960 h configuration (count-batched)
if ((QUICK)); then
    SIZE=(--set model.hidden_size=32 --set model.conv_channels=4
        --set data.num_workers=0)
    TONES=16 EPOCHS=2 STEPS=1 FILES=4 KILL_AFTER=last.pt
else
    SIZE=()
    TONES=1500 EPOCHS=4 STEPS=20 FILES=400 KILL_AFTER=epochs/epoch1.pt
fi
rm -rf "$OUT" && mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "machine"
"$PY" - "$DEVICE" <<'EOF'
import sys, torch
device = sys.argv[1]
print(f"torch {torch.__version__}, device {device}", end="")
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (DEVICE=cpu runs the steps on the CPU)")
    print(f": {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)", end="")
print()
EOF

if [[ -z $MANIFEST ]]; then
    say "data: a tone corpus of $TONES utterances"
    run "${ASR[@]}" data tones --out "$OUT/tones" --num "$TONES" --seed 0
    MANIFEST=$OUT/tones/manifest.jsonl
fi
sets=(--set "data.train_manifest=\"$MANIFEST\"" --set "data.valid_manifest=\"$MANIFEST\""
    --set "train.device=\"$DEVICE\"" --set "optim.epochs=$EPOCHS" --set train.save_every_steps=2
    --set train.tensorboard=false "${SIZE[@]}")

say "train N's configuration, SIGKILL it once a checkpoint exists, resume to the end"
printf '$ %s\n' "${ASR[*]} train --config $CONFIG --exp-dir $OUT/train ${sets[*]}"
"${ASR[@]}" train --config "$CONFIG" --exp-dir "$OUT/train" "${sets[@]}" >"$OUT/train.log" 2>&1 &
pid=$!
until [[ -f $OUT/train/$KILL_AFTER ]] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "killed with SIGKILL after $OUT/train/$KILL_AFTER was written"
else
    wait "$pid" || { tail -n 20 "$OUT/train.log"; exit 1; }
    echo "it finished before it could be killed (nothing to resume)"
fi
start=$SECONDS
run "${ASR[@]}" train --config "$CONFIG" --exp-dir "$OUT/train" "${sets[@]}" --resume \
    >>"$OUT/train.log" 2>&1 || { tail -n 20 "$OUT/train.log"; exit 1; }
test -f "$OUT/train/model.pt" || { echo "gpu_check: no model.pt after resuming" >&2; exit 1; }
echo "resumed and finished in $((SECONDS - start)) s: $OUT/train/model.pt"

say "torchrun, one process per GPU"
nproc=1
[[ $DEVICE == cuda* ]] && nproc=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
run "$PY" -m torch.distributed.run --standalone --nproc-per-node "$nproc" -m asr train \
    --config "$CONFIG" --exp-dir "$OUT/ddp" "${sets[@]}" --set optim.epochs=1 \
    >"$OUT/ddp.log" 2>&1 || { tail -n 20 "$OUT/ddp.log"; exit 1; }
test -f "$OUT/ddp/model.pt" || { echo "gpu_check: no model.pt from torchrun" >&2; exit 1; }
echo "torchrun with $nproc process(es) wrote $OUT/ddp/model.pt"

say "training throughput (audio seconds trained per second)"
bench=(--manifest "$MANIFEST" --steps "$STEPS" --rounds 1 --set "train.device=\"$DEVICE\"" "${SIZE[@]}")
run "$PY" -m benchmarks.train_throughput --config "$CONFIG" "${bench[@]}"
run "$PY" -m benchmarks.train_throughput --config "$BIG" "${bench[@]}"

say "transcription throughput: $FILES files, the bundled model, greedy, torch on $DEVICE"
mkdir -p "$OUT/audio"
for i in $(seq 1 "$FILES"); do ln -sf "$PWD/data/samples/sample.wav" "$OUT/audio/$i.wav"; done
audio=$("$PY" -c 'import soundfile as sf, sys; print(sf.info(sys.argv[1]).duration * int(sys.argv[2]))' \
    data/samples/sample.wav "$FILES")
start=$(date +%s.%N)
run "${ASR[@]}" transcribe "$OUT/audio" --runtime torch --device "$DEVICE" --decoder greedy \
    --batch-size 64 --quiet --output-dir "$OUT/transcripts" >/dev/null
wall=$("$PY" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")
"$PY" -c "import sys; a, w = map(float, sys.argv[1:]); print(f'{a:.0f} s of audio in {w:.1f} s: {a / w:.0f}x real time')" \
    "$audio" "$wall"
say "gpu_check: done"
