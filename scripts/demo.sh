#!/usr/bin/env bash
# demo.sh - the main job: install dependencies, build, and run every task of
# the example configuration (pgreviewer.yaml + conf.d/) once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
echo "== pgreviewer config check"
./build/pgreviewer --config pgreviewer.yaml config check
echo "== pgreviewer run --once (one JSON line per task)"
./build/pgreviewer --config pgreviewer.yaml run --once
