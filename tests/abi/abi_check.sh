#!/usr/bin/env bash
# abi_check.sh DUMP BASELINE - the ABI only grows: every line of the
# baseline must appear in the current dump, in the same order, unchanged.
set -euo pipefail
current=$("$1")
baseline=$(grep -v '^#' "$2")
missing=0
while read -r line; do
  [ -z "$line" ] && continue
  if ! grep -qxF -- "$line" <<<"$current"; then
    echo "ABI break: baseline line \"$line\" is not in the current layout"
    missing=1
  fi
done <<<"$baseline"
if [ $missing = 1 ]; then
  echo "current layout:"; echo "$current"
  echo "Fields may only be appended. A breaking change is a new major (pgreviewer_plugin_v2)."
  exit 1
fi
echo "ABI layout matches the baseline ($(wc -l <<<"$baseline") lines)"
