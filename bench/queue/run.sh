#!/usr/bin/env bash
# run.sh - the queue benchmark: starts its own redis-server (loopback, no
# persistence, in a temporary directory), runs bench_queue against it over
# TCP, then prints redis-benchmark's LPUSH and RPOP figures against the same
# server as the ceiling. Never passes or fails on time.
#
#   bench/queue/run.sh [BUILD_DIR] [N]     (default: build, 20000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
n=${2:-20000}
bin="$build/bench/queue/bench_queue"
[ -x "$bin" ] || { echo "run.sh: $bin not built (cmake --build $build --target bench_queue)" >&2; exit 1; }

dir=$(mktemp -d /tmp/pgr-bench-queue-XXXXXX)
trap 'bash "$root/tests/lib/redis_harness.sh" stop "$dir" >/dev/null 2>&1 || true' EXIT
trap 'exit 1' INT TERM PIPE
read -r port sock < <(bash "$root/tests/lib/redis_harness.sh" start "$dir")

echo "== pgreviewer queue (Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), 127.0.0.1:$port, $(nproc) cores, $(date -u +%FT%TZ))"
"$bin" --url "redis://127.0.0.1:$port/0" --n "$n"
redis-cli -p "$port" flushall >/dev/null

echo "== ceiling: redis-benchmark against the same server, $n requests each"
ceiling() {
    local label=$1; shift
    redis-benchmark -p "$port" -n "$n" --csv "$@" 2>/dev/null | tail -1 | tr -d '"' |
        awk -F, -v l="$label" '{ printf "%-34s %10.0f /s   p50 %.3f ms   p99 %.3f ms\n", l, $2, $5, $7 }'
}
ceiling "LPUSH, 1 client, no pipeline" -c 1 -P 1 -t lpush
ceiling "LPUSH, 1 client, pipeline 16" -c 1 -P 16 -t lpush
ceiling "LPUSH, 8 clients, pipeline 16" -c 8 -P 16 -t lpush
ceiling "RPOP, 1 client, no pipeline" -c 1 -P 1 -t rpop
ceiling "RPOP, 1 client, pipeline 16" -c 1 -P 16 -t rpop

echo "== in-process queue (memory:), for comparison"
"$bin" --n "$n" --latency-samples 500
