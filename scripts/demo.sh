#!/usr/bin/env bash
# demo.sh - the main job. On a fresh Debian 12 machine (as root): install
# the dependencies, build, then run a one-minute demonstration:
#
#   - a throw-away PostgreSQL (statement logging on) and redis-server, in a
#     temporary directory, stopped at the end;
#   - `pgreviewer run` with the Redis queue, scheduling on second-level cron:
#     log_analysis of the demo server's own log, the ready checks of
#     conf.d/checks/ (custom_sql) against a pgbench database, and the API;
#   - a pgbench workload plus some errors, lock waits and temporary files
#     while it runs;
#   - at the end, what ran, and a report of the minute (HTML, Markdown, JSON)
#     written to demo-output/ (DEMO_OUTPUT to change it).
#
# DEMO_SECONDS (default 60) sets the length of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
bash scripts/deps.sh
bash scripts/build.sh build
bin=$src/build/pgreviewer
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
seconds=${DEMO_SECONDS:-60}
out=${DEMO_OUTPUT:-$src/demo-output}
work=$(mktemp -d /tmp/pgreviewer-demo-XXXXXX)
chmod 755 "$work"
mkdir -p "$out"
pgr_pid=""
cleanup() {
    [ -n "$pgr_pid" ] && kill "$pgr_pid" 2>/dev/null && wait "$pgr_pid" 2>/dev/null
    bash "$src/tests/lib/pg_harness.sh" stop "$work/pg" >/dev/null 2>&1 || true
    bash "$src/tests/lib/redis_harness.sh" stop "$work/redis" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting a throw-away PostgreSQL and redis-server in $work"
conninfo=$(bash tests/lib/pg_harness.sh start "$work/pg" \
    "log_min_duration_statement = 0" "log_line_prefix = '%m [%p] %q%u@%d/%a '" \
    "log_checkpoints = on" "log_connections = on" "log_disconnections = on" \
    "log_lock_waits = on" "deadlock_timeout = 100ms" "log_temp_files = 0" \
    "log_autovacuum_min_duration = 0" "lc_messages = 'C'" "work_mem = '64kB'")
pguser=${conninfo##*user=}
read -r _ redis_sock < <(bash tests/lib/redis_harness.sh start "$work/redis")
psql_() { "$pgbin/psql" -X -q -h "$work/pg" -U "$pguser" "$@"; }
psql_ -d postgres -c "CREATE DATABASE pgreviewer" -c "CREATE DATABASE shop"
"$pgbin/pgbench" -q -i -s 2 -h "$work/pg" -U "$pguser" shop >/dev/null 2>&1

# The ready checks, rescheduled to every 15 seconds for the demo.
mkdir -p "$work/checks"
for f in conf.d/checks/*.yaml; do
    sed -E 's/^( *schedule: ).*/\1"*\/15 * * * * *"/' "$f" >"$work/checks/$(basename "$f")"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/pgreviewer.yaml" <<YAML
include: checks/*.yaml
store: {url: "host=$work/pg dbname=pgreviewer user=$pguser"}
queue: {url: "unix://$redis_sock", prefix: demo}
api: {listen: "127.0.0.1:$port"}
workers: {processes: 2}
logging: {level: warning, format: text}
connections:
  - {id: target, host: "$work/pg", port: 5432, database: shop, username: $pguser}
tasks:
  - name: log-review
    type: log_analysis
    schedule: "*/20 * * * * *"
    params: {files: ["$work/pg/server.log"], format: stderr, prefix: "%m [%p] %q%u@%d/%a "}
YAML
"$bin" --config "$work/pgreviewer.yaml" config check | sed -n '1,3p'

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "== pgreviewer run for ${seconds}s (API on 127.0.0.1:$port), with a workload"
"$bin" --config "$work/pgreviewer.yaml" run 2>"$work/pgreviewer.log" &
pgr_pid=$!
"$pgbin/pgbench" -n -T "$seconds" -c 2 -R 20 -h "$work/pg" -U "$pguser" shop >/dev/null 2>&1 &
bench_pid=$!
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
    psql_ -d shop -c "SELECT 1/0" 2>/dev/null || true                  # an error
    psql_ -d shop -c "SELECT count(*) FROM (SELECT * FROM pgbench_accounts ORDER BY abalance, bid) s" >/dev/null   # a temporary file
    psql_ -d shop -c "SELECT pg_sleep(0.3)" >/dev/null                 # a slow statement
    sleep 2
done
wait "$bench_pid" || true
sleep 2
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^pgreviewer_(executions|scheduler_fires_total|attempts_total)' || true
kill -TERM "$pgr_pid"
wait "$pgr_pid" || true
pgr_pid=""
stop=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)

echo "== what ran"
"$bin" --config "$work/pgreviewer.yaml" task list
psql_ -d pgreviewer -c "SELECT task_name AS task, status, count(*) AS runs,
    round(avg(extract(epoch FROM completed_at - started_at))::numeric * 1000) AS avg_ms
    FROM task_executions GROUP BY 1, 2 ORDER BY 1, 2"
echo "== the log analysis of the demo server's own log (all its runs, incremental)"
psql_ -d pgreviewer -c "SELECT e.id AS execution, e.scheduled_for::time(0) AS fired,
    r.result->'queries'->>'total' AS statements,
    r.result->'queries'->>'total_duration_ms' AS total_ms,
    r.result->'errors'->>'total' AS errors, r.result->'temp_files'->>'count' AS temp_files
    FROM analysis_results r JOIN task_executions e ON e.id = r.execution_id
    WHERE e.task_name = 'log-review' ORDER BY e.id"
echo "== report of the run"
for fmt in html md json; do
    "$bin" --config "$work/pgreviewer.yaml" report generate --from "$start" --to "$stop" \
        --format "$fmt" --output "$out/report.$fmt" >/dev/null
done
sed -n '1,25p' "$out/report.md"
echo
echo "The HTML report is $out/report.html (also report.md and report.json)."
