#!/usr/bin/env bash
# Install the named Debian packages that are not installed yet (root); nothing when all are.
#   bash scripts/apt_install.sh espeak-ng flite
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
