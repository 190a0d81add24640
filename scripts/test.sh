#!/usr/bin/env bash
# test.sh - install dependencies, build, and run every test: the normal
# build (gcc, -Werror) and then the sanitizer build (clang, ASan + UBSan).
# Set PGR_SKIP_SANITIZE=1 to run only the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
echo "== build (gcc, -Werror)"
bash scripts/build.sh build
echo "== ctest (build)"
(cd build && ctest --output-on-failure -j2 --timeout 900)
if [ "${PGR_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (clang, AddressSanitizer + UndefinedBehaviorSanitizer)"
  CC=clang bash scripts/build.sh build-asan -DPGREVIEWER_SANITIZE=ON -DCMAKE_C_COMPILER=clang
  echo "== ctest (build-asan)"
  (cd build-asan && ctest --output-on-failure -j2 --timeout 900)
fi
