#!/usr/bin/env bash
# The punctuation and case restorer, data/models/punct-en (README.md: commands and results).
#   bash recipes/punctuation/run.sh     # about 40 min on a busy 2-core CPU
set -euo pipefail
BOOKS="${BOOKS:-../shared/data/gutenberg ../shared/data/gutenberg_extra}"
EXP="${EXP:-exp/punct}"
OUT="${OUT:-data/models/punct-en}"
CONFIG=recipes/punctuation/config.toml

# shellcheck disable=SC2086  # BOOKS is a list of folders
python recipes/punctuation/prepare.py --config "$CONFIG" --books $BOOKS --out "$EXP/data"
nice -n 5 python recipes/punctuation/train.py --config "$CONFIG" --data "$EXP/data" \
    --exp "$EXP/run1" --export "$OUT"
python recipes/punctuation/calibrate.py --model "$OUT" --data "$EXP/data"
# shellcheck disable=SC2086
python benchmarks/punctuation.py --model "$OUT" --books $BOOKS --show-misses 0
