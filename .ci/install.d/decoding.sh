#!/usr/bin/env bash
# Decoding (issue 4): KenLM's lmplz/build_binary for the `asr lm build` tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install_kenlm.sh
