#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the `asr serve` page test (tests/test_serve_browser.py).
set -euo pipefail
bash "$(dirname "$0")/../../scripts/apt_install.sh" chromium chromium-driver
