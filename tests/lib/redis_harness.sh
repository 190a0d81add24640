#!/usr/bin/env bash
# redis_harness.sh - start and stop a throw-away redis-server for tests.
#
#   redis_harness.sh start DIR [extra redis.conf lines...]
#        -> starts redis-server with its unix socket DIR/redis.sock and a free
#           loopback port, prints one line: "PORT SOCKET"
#   redis_harness.sh restart DIR -> shuts it down (saving, so an appendonly
#           file is complete) and starts it again with the same redis.conf:
#           same port, same socket, same data
#   redis_harness.sh stop DIR  -> shuts it down and removes DIR
set -euo pipefail
cmd=${1:?usage: redis_harness.sh start|restart|stop DIR}
dir=${2:?usage: redis_harness.sh start|restart|stop DIR}

wait_ping() {
    for _ in $(seq 1 200); do
        redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server did not answer within 10s; log:" >&2
    cat "$dir/redis.log" >&2
    return 1
}

wait_gone() {
    local pid=$1
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
}
# redis-cli as the default user, with the config's requirepass if any.
cli() {
    local pass
    pass=$(sed -n 's/^requirepass //p' "$dir/redis.conf" 2>/dev/null || true)
    if [ -n "$pass" ]; then
        REDISCLI_AUTH=$pass redis-cli -s "$dir/redis.sock" "$@" >/dev/null 2>&1 || true
    else
        redis-cli -s "$dir/redis.sock" "$@" >/dev/null 2>&1 || true
    fi
}

case "$cmd" in
start)
    shift 2
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    {
        echo "port $port"
        echo "bind 127.0.0.1"
        echo "unixsocket $dir/redis.sock"
        echo "unixsocketperm 700"
        echo "dir $dir"
        echo "daemonize yes"
        echo "pidfile $dir/redis.pid"
        echo "logfile $dir/redis.log"
        echo "save \"\""
        echo "appendonly no"
        for line in "$@"; do echo "$line"; done
    } >"$dir/redis.conf"
    redis-server "$dir/redis.conf"
    wait_ping || exit 1
    echo "$port $dir/redis.sock"
    ;;
restart)
    pid=$(cat "$dir/redis.pid")
    # A plain SHUTDOWN fsyncs the appendonly file.
    cli shutdown
    wait_gone "$pid"
    redis-server "$dir/redis.conf"
    wait_ping || exit 1
    ;;
stop)
    if [ -S "$dir/redis.sock" ]; then
        cli shutdown nosave
    fi
    if [ -f "$dir/redis.pid" ]; then
        wait_gone "$(cat "$dir/redis.pid")"
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: redis_harness.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac
