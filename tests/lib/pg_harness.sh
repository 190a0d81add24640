#!/usr/bin/env bash
# pg_harness.sh - start and stop a throw-away PostgreSQL for tests.
#
#   pg_harness.sh start DIR [CONF...]
#                             -> creates a cluster in DIR, starts it on a unix
#                                socket in DIR (no TCP), prints one line: a
#                                libpq key=value conninfo for database "postgres";
#                                each CONF argument is one more postgresql.conf line
#   pg_harness.sh stop DIR    -> stops it (immediate) and removes DIR
#
# initdb refuses to run as root, and CI runs as root: then the cluster is run
# by the unprivileged user "pgrtest" (created on first use). The socket
# directory is made world-accessible so root's tests can connect as the
# superuser "pgrtest" via trust auth on the socket only.
set -euo pipefail
cmd=${1:?usage: pg_harness.sh start|stop DIR}
dir=${2:?usage: pg_harness.sh start|stop DIR}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
user=$(id -un)

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u pgrtest -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if [ "$(id -u)" = 0 ]; then
        id pgrtest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin pgrtest
        user=pgrtest
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown pgrtest "$dir"
        # The cluster's owner must be able to reach DIR: open the parent for
        # traversal when it is a private temporary directory of ours.
        parent=$(dirname "$dir")
        [ -O "$parent" ] && chmod a+x "$parent"
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U "$user" -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 32MB
log_min_messages = warning
CONF
    shift 2
    for line in "$@"; do echo "$line" >>"$dir/data/postgresql.conf"; done
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "host=$dir port=5432 dbname=postgres user=$user"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg_harness.sh start|stop DIR" >&2
    exit 2
    ;;
esac
