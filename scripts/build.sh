#!/usr/bin/env bash
# build.sh [BUILD_DIR] [cmake options...] - configure and build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DPGREVIEWER_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
