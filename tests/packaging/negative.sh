#!/usr/bin/env bash
# negative.sh - the packaging checks can fail: each case breaks one thing in
# a copy of the source tree and expects check_units.sh to fail with the
# exact message that names it. Run by ctest as packaging_negative.
set -euo pipefail
src=${PGR_SOURCE_DIR:?}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# case MODE MESSAGE EDIT...: copy the tree, run the EDIT command in it,
# run check_units.sh MODE on the copy, expect a failure whose output holds
# MESSAGE. Prints "ok: ..." or FAIL lines and returns 1 on failure.
n=0
case_() {
    local mode=$1 msg=$2; shift 2
    local copy="$tmp/src$n" fails=0
    mkdir "$copy"
    tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$copy" -xf -
    (cd "$copy" && eval "$@")
    local out rc=0
    out=$(PGR_SOURCE_DIR="$copy" bash "$here/check_units.sh" "$mode" 2>&1) || rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "FAIL: after \`$*\`, check_units.sh $mode passed"; fails=1
    elif [[ $out != *"$msg"* ]]; then
        echo "FAIL: after \`$*\`, expected \"$msg\" in:"; echo "$out"; fails=1
    else
        echo "ok: $mode: $msg"
    fi
    return $fails
}

# expect ...: run a case in the background (each process mostly waits;
# in parallel the whole suite takes a few seconds); results in $tmp/out.N.
pids=()
expect() {
    n=$((n + 1))
    case_ "$@" > "$tmp/out.$n" 2>&1 &
    pids+=($!)
}

expect units 'pgreviewer-worker: ExecReload= set, but `pgreviewer worker` dies on SIGHUP' \
    "sed -i 's|^KillMode=mixed|&\nExecReload=/bin/kill -HUP \$MAINPID|' packaging/systemd/pgreviewer-worker.service"
expect units 'pgreviewer: LimitCORE=0 missing (secrets in core dumps)' \
    "sed -i '/^LimitCORE=/d' packaging/systemd/pgreviewer.service"
expect units 'pgreviewer-worker: TimeoutStopSec=30 is not beyond shutdown_grace + kill_grace (35s)' \
    "sed -i 's/^TimeoutStopSec=.*/TimeoutStopSec=30s/' packaging/systemd/pgreviewer-worker.service"
expect units 'pgreviewer-api: ExecStart is "/usr/bin/pgreviewer --config ${PGREVIEWER_CONFIG} apii"' \
    "sed -i 's/} api\$/} apii/' packaging/systemd/pgreviewer-api.service"
if command -v systemd-analyze >/dev/null; then
    expect units "Unknown key 'Bogus' in section [Service]" \
        "sed -i 's/^\[Service\]/&\nBogus=1/' packaging/systemd/pgreviewer-scheduler.service"
fi
expect install 'etc/pgreviewer/conf.d/checks/wraparound.yaml: installed by cmake --install but in no debian/*.install' \
    "sed -i '/checks/d' debian/pgreviewer.install"
expect install 'usr/bin/pgreviewer: in two packages: pgreviewer, pgreviewer-plugin-dev' \
    "echo usr/bin/pgreviewer >> debian/pgreviewer-plugin-dev.install"
expect install 'debian/pgreviewer.install:9: usr/share/man/man5/*.5 matches nothing cmake --install lays out' \
    "echo 'usr/share/man/man5/*.5' >> debian/pgreviewer.install"
expect control 'debian/control: Build-Depends lacks zlib1g-dev (pkg_check_modules zlib)' \
    "sed -i '/zlib1g-dev/d' debian/control"
expect control 'debian/changelog: version 0.2.0, but CMakeLists.txt says 0.1.0' \
    "sed -i '1s/0.1.0/0.2.0/' debian/changelog"
expect control 'packaging/rpm/pgreviewer.spec: Version 0.0.9, but CMakeLists.txt says 0.1.0' \
    "sed -i 's/^Version:.*/Version:        0.0.9/' packaging/rpm/pgreviewer.spec"

for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fails=$((fails + 1))
    cat "$tmp/out.$((i + 1))"
done
[[ $fails -eq 0 ]] || { echo "$fails failure(s)" >&2; exit 1; }
echo "packaging negative: ok"
