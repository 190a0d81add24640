#!/usr/bin/env bash
# test.sh - install dependencies, build, and run every test: the normal
# build (gcc, -Werror) and then the sanitizer build (clang, ASan + UBSan).
# and last the libFuzzer targets (clang), each for PGR_FUZZ_SECONDS (20).
# Set PGR_SKIP_SANITIZE=1 / PGR_SKIP_FUZZ=1 to leave those stages out.
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
if [ "${PGR_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== build (clang, libFuzzer targets)"
  CC=clang bash scripts/build.sh build-fuzz -DCMAKE_C_COMPILER=clang -DPGREVIEWER_FUZZ=ON \
    -DPGR_FUZZ_SECONDS="${PGR_FUZZ_SECONDS:-20}"
  echo "== ctest -L fuzz (build-fuzz)"
  (cd build-fuzz && ctest --output-on-failure -L fuzz --timeout 900)
fi
