#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the `asr serve` page test (tests/test_serve_browser.py).
set -euo pipefail
packages=(chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
