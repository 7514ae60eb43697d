#!/usr/bin/env bash
# Speech synthesizers for `asr data synth`, its tests and the synthetic recipe (Debian 12).
set -euo pipefail
packages=(espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
