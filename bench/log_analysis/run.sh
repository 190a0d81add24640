#!/bin/sh
# bench/log_analysis/run.sh - throughput of the log_analysis engine against
# pgBadger and wc -l on the same PostgreSQL stderr log, in one run.
#
#   bench/log_analysis/run.sh [BUILD_DIR] [COPIES]
#
# Builds a large log (COPIES copies of the sample stderr log, default 130:
# about 212 MB) with the generator's make_big.py, warms the page cache, then
# prints MB/s for: wc -l, la_cli with 1 thread, la_cli with all cores, and
# pgBadger -j 1 on a slice of the log (pgBadger reads about 2.4 MB/s: the
# whole log would take minutes; the slice is 4 copies, about 6.5 MB, and
# its size is printed). Figures only: it never fails on time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
copies=${2:-130}
# shared/ beside the repository, else where developers' machines have it.
data=${LA_DATA_DIR:-}
[ -n "$data" ] || { [ -d "$src/../shared/data/pglog" ] && data=$(cd "$src/../shared/data/pglog" && pwd); } || true
[ -n "$data" ] || data=/work/shared/data/pglog
cli=$build/tests/la_cli
prefix='%m [%p] %q%u@%d/%a '
[ -x "$cli" ] || { echo "run.sh: $cli not built (cmake --build $build --target la_cli)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/la_bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
xz -dc "$data/small.stderr.log.xz" > "$tmp/small.log"
python3 "$data/generator/make_big.py" "$tmp/small.log" "$tmp/big.log" "$copies" >/dev/null
python3 "$data/generator/make_big.py" "$tmp/small.log" "$tmp/slice.log" 4 >/dev/null
cat "$tmp/big.log" "$tmp/slice.log" > /dev/null
size=$(stat -c %s "$tmp/big.log")
slice=$(stat -c %s "$tmp/slice.log")

# timed NAME BYTES CMD...: wall-clock MB/s, and MB/s per CPU second (user +
# system; what one core does when the machine is shared with other work).
timed() {
  name=$1 bytes=$2; shift 2
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  awk -v n="$name" -v b="$bytes" '{ w = $1 > 0 ? $1 : 0.001; c = $2 + $3 > 0 ? $2 + $3 : 0.001;
    printf "%-26s %9.1f MB/s wall %9.1f MB/s per CPU-s  (%.2f s wall, %.2f s CPU, %.1f MB)\n",
           n, b / 1e6 / w, b / 1e6 / c, w, c, b / 1e6 }' "$tmp/time"
}

echo "log: $size bytes, $(wc -l < "$tmp/big.log") lines; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
timed "wc -l" "$size" wc -l "$tmp/big.log"
for th in 1 0; do
  timed "la_cli threads=$th" "$size" sh -c "exec \"\$0\" \"\$1\" > \"\$2\"" "$cli" \
    "{\"files\":[\"$tmp/big.log\"],\"format\":\"stderr\",\"prefix\":\"$prefix\",\"threads\":$th}" "$tmp/out.$th.json"
done
python3 - "$tmp/out.1.json" "$tmp/out.0.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    d['input'].pop('seconds'); d['input'].pop('files'); d['queries'].pop('shape_cache_hits')
print('statements %d, distinct %d, unparsed lines %d; 1 thread and all cores agree: %s'
      % (a['queries']['total'], a['queries']['distinct_normalized'],
         a['input']['unparsed_lines'], a == b))
PY
if command -v pgbadger >/dev/null 2>&1; then
  timed "pgbadger -j 1 (slice)" "$slice" pgbadger -j 1 -f stderr --prefix "$prefix" -x json \
    -o "$tmp/pgb.json" "$tmp/slice.log"
  timed "la_cli threads=1 (slice)" "$slice" "$cli" \
    "{\"files\":[\"$tmp/slice.log\"],\"format\":\"stderr\",\"prefix\":\"$prefix\",\"threads\":1}"
fi
