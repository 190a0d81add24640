#!/usr/bin/env bash
# run_worker.sh - end-to-end figures of the worker supervisor (bench_worker)
# with and without the store, beside redis-benchmark's LPUSH/RPOP ceiling on
# the same server in the same run. Starts its own redis-server (loopback,
# no persistence) and PostgreSQL (tests/lib harnesses) in temporary
# directories. Never passes or fails on time.
#
#   bench/queue/run_worker.sh [BUILD_DIR] [N]     (default: build, 20000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
n=${2:-20000}
bin="$build/bench/queue/bench_worker"
[ -x "$bin" ] || { echo "run_worker.sh: $bin not built (cmake --build $build --target bench_worker)" >&2; exit 1; }

rdir=$(mktemp -d /tmp/pgr-bench-worker-redis-XXXXXX)
pdir=$(mktemp -d /tmp/pgr-bench-worker-pg-XXXXXX)
cleanup() {
    bash "$root/tests/lib/redis_harness.sh" stop "$rdir" >/dev/null 2>&1 || true
    bash "$root/tests/lib/pg_harness.sh" stop "$pdir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
read -r port sock < <(bash "$root/tests/lib/redis_harness.sh" start "$rdir")
conninfo=$(bash "$root/tests/lib/pg_harness.sh" start "$pdir")
# The store's database: fsync stays on (the default); a benchmark of a store
# that does not persist would flatter us.

echo "== pgreviewer worker end to end (Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), PostgreSQL $(pg_config --version 2>/dev/null | awk '{print $2}' || echo 15), $(nproc) cores, $(date -u +%FT%TZ))"
PGR_PLUGIN_DIR="$build/plugins" "$bin" --url "redis://127.0.0.1:$port/0" --store "$conninfo" --n "$n" ${BENCH_ARGS:-}
redis-cli -p "$port" flushall >/dev/null

echo "== ceiling: redis-benchmark against the same server, $n requests each"
ceiling() {
    local label=$1; shift
    local rps
    rps=$(redis-benchmark -p "$port" -n "$n" -q "$@" 2>/dev/null | tr '\r' '\n' |
          sed -n 's/^\([A-Z]*\): \([0-9.]*\) requests per second.*/\2/p' | tail -1)
    printf '%-34s %10.0f /s\n' "$label" "$rps"
}
ceiling "LPUSH, 1 client, no pipeline" -c 1 -P 1 -t lpush
ceiling "LPUSH, 1 client, pipeline 16" -c 1 -P 16 -t lpush
ceiling "RPOP, 1 client, no pipeline" -c 1 -P 1 -t rpop
ceiling "RPOP, 1 client, pipeline 16" -c 1 -P 16 -t rpop
