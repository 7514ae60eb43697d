#!/usr/bin/env bash
# Speech synthesizers for `asr data synth`, its tests and the synthetic recipe (Debian 12).
set -euo pipefail
bash "$(dirname "$0")/../../scripts/apt_install.sh" espeak-ng flite festival festvox-kallpc16k \
    festvox-us-slt-hts
