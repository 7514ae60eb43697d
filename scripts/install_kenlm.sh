#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm source distribution on PyPI and
# install them into $KENLM_PREFIX/bin (default /usr/local/bin). Idempotent: does nothing
# when both tools already run. Needs root for apt-get (skipped with KENLM_SKIP_APT=1).
#
#   sudo scripts/install_kenlm.sh            # then: asr lm build --text ... --out ...
set -euo pipefail

PREFIX="${KENLM_PREFIX:-/usr/local}"
JOBS="${KENLM_JOBS:-$(nproc)}"

if command -v lmplz >/dev/null && command -v build_binary >/dev/null; then
    echo "install_kenlm: lmplz and build_binary already on PATH ($(command -v lmplz))"
    exit 0
fi

if [[ "${KENLM_SKIP_APT:-0}" != 1 ]]; then
    apt-get update
    apt-get install -y --no-install-recommends \
        build-essential cmake libboost-program-options-dev libboost-system-dev \
        libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Only kenlm itself from source: its build dependencies (cmake, setuptools) come as wheels.
python3 -m pip download --no-deps --no-binary kenlm --dest "$work" kenlm
tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
src="$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -n 1)"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
    -DCOMPILE_TESTS=OFF
cmake --build "$work/build" --target lmplz build_binary -j "$JOBS"
install -d "$PREFIX/bin"
install -m 0755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$PREFIX/bin/"
echo "install_kenlm: installed lmplz and build_binary into $PREFIX/bin"
