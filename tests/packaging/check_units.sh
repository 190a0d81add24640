#!/usr/bin/env bash
# check_units.sh - cheap, deterministic checks of the packaging, run by
# ctest (tests/packaging.cmake), one mode per test:
#
#   units    packaging/systemd/*.service parse (systemd-analyze verify when
#            it exists, else a section/key check) and keep the promises the
#            daemon relies on (see the per-unit rules below)
#   control  debian/control, changelog and the RPM spec are well-formed and
#            agree with CMakeLists.txt (version, build dependencies)
#   install  the debian/*.install lists cover exactly what `cmake --install`
#            of this build tree lays out
#
# Needs PGR_SOURCE_DIR, PGR_BUILD_DIR and PGR_BIN (set by ctest). The full
# dpkg-buildpackage build is not run here (minutes); see docs/install.md.
set -euo pipefail
mode=${1:?usage: check_units.sh units|control|install}
src=${PGR_SOURCE_DIR:?} build=${PGR_BUILD_DIR:?} bin=${PGR_BIN:?}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# load UNIT: its Key=value lines into the array kv (a key given twice keeps
# its last value, as systemd does for the keys we check). No subprocesses:
# a process start costs more here than the whole parse.
declare -A kv
load() {
    kv=()
    local line
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^([A-Za-z]+)=(.*)$ ]]; then
            kv[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
        fi
    done < "$1"
}

check_unit() {
    local u=$1 name role
    load "$u"
    name=${u##*/}; name=${name%.service}
    role=${name#pgreviewer}; role=${role#-}; role=${role:-run}
    local exec
    exec=${kv[ExecStart]-}
    [[ $exec == "/usr/bin/pgreviewer --config \${PGREVIEWER_CONFIG} $role" ]] ||
        fail "$name: ExecStart is \"$exec\", expected /usr/bin/pgreviewer --config \${PGREVIEWER_CONFIG} $role"
    [[ $help =~ (^|$'\n')"  $role"( |$'\n') ]] ||
        fail "$name: \`pgreviewer --help\` lists no command \"$role\""
    [[ ${kv[User]-} == pgreviewer ]] || fail "$name: User= is not pgreviewer"
    [[ ${kv[LimitCORE]-} == 0 ]] || fail "$name: LimitCORE=0 missing (secrets in core dumps)"
    [[ ${kv[Restart]-} == on-failure ]] || fail "$name: Restart= is not on-failure"
    [[ ${kv[ProtectSystem]-} == strict ]] || fail "$name: ProtectSystem= is not strict"
    [[ ${kv[RestrictAddressFamilies]-} == "AF_UNIX AF_INET AF_INET6" ]] ||
        fail "$name: RestrictAddressFamilies= is not AF_UNIX AF_INET AF_INET6"
    local k
    for k in NoNewPrivileges ProtectHome PrivateTmp; do
        [[ ${kv[$k]-} == yes ]] || fail "$name: $k= is not yes"
    done
    # Only `run` handles SIGHUP (daemon.h); for the others it is fatal.
    if [[ $role == run ]]; then
        [[ ${kv[ExecReload]-} == '/bin/kill -HUP $MAINPID' ]] ||
            fail "$name: ExecReload= is not /bin/kill -HUP \$MAINPID"
    elif [[ -n ${kv[ExecReload]-} ]]; then
        fail "$name: ExecReload= set, but \`pgreviewer $role\` dies on SIGHUP"
    fi
    # Supervisors of executors: SIGTERM to the main process only, and time
    # for shutdown_grace (30s) + kill_grace (5s) + writing the outcomes.
    if [[ $role == run || $role == worker ]]; then
        [[ ${kv[KillMode]-} == mixed ]] || fail "$name: KillMode= is not mixed"
        local t
        t=${kv[TimeoutStopSec]-}; t=${t%s}
        [[ $t =~ ^[0-9]+$ ]] && ((t > 35)) ||
            fail "$name: TimeoutStopSec=$t is not beyond shutdown_grace + kill_grace (35s)"
    fi
    # Without systemd-analyze: every line is a comment, a [Section] we use
    # or Key=value.
    if ! command -v systemd-analyze >/dev/null; then
        local bad
        bad=$(grep -Ev '^(#.*|\[(Unit|Service|Install)\]|[A-Za-z]+=.*|)$' "$u" || true)
        [[ -z $bad ]] || fail "$name: lines that are not Key=value: $bad"
    fi
}

case $mode in
units)
    help=$("$bin" --help)
    units=("$src"/packaging/systemd/*.service)
    [[ ${#units[@]} -eq 4 ]] || fail "expected 4 units, found ${#units[@]}: ${units[*]}"
    for u in "${units[@]}"; do check_unit "$u"; done
    if command -v systemd-analyze >/dev/null; then
        # verify checks that ExecStart's binary exists: point it at ours.
        for u in "${units[@]}"; do
            sed "s|/usr/bin/pgreviewer|$bin|" "$u" > "$tmp/$(basename "$u")"
        done
        out=$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1) ||
            fail "systemd-analyze verify failed"
        [[ -z $out ]] || fail "systemd-analyze verify: $out"
    else
        echo "note: no systemd-analyze; checked sections and keys only"
    fi
    ;;
control|install)
    python3 "$here/debian_check.py" "$mode" "$src" "$build" "$tmp" || fails=$((fails + 1))
    ;;
*)
    echo "usage: check_units.sh units|control|install" >&2
    exit 2
    ;;
esac
[[ $fails -eq 0 ]] || { echo "$fails failure(s)" >&2; exit 1; }
echo "packaging $mode: ok"
