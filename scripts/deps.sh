#!/usr/bin/env bash
# deps.sh - install everything pgreviewer needs to build, run and test, from
# Debian 12's archive (run as root, or with sudo available). Idempotent: it
# only calls apt-get when a package is missing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev            # sanitizers and libFuzzer
  libhiredis-dev libpq-dev libcurl4-openssl-dev libyaml-dev libjansson-dev
  libmicrohttpd-dev libcmocka-dev zlib1g-dev
  redis-server redis-tools postgresql postgresql-contrib
  python3 openssl xz-utils tzdata pgbadger
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "deps.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian postgresql package starts a cluster of its own; our tests and
# demo never use it (they start throw-away servers), so leave it alone.
