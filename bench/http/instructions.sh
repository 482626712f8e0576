#!/usr/bin/env bash
# Instructions per request: cachette under valgrind's callgrind, beside a
# build of another commit (`make bench-instructions`, or run directly).
#
# Requests per second on this VM swing by ±20% from one 5 s run to the next,
# so a change that costs 1% cannot be told from noise by wrk alone. The
# instructions a request executes barely depend on the machine's mood: this
# counts them. For each workload and each build, a fresh server (--threads
# 1) starts under callgrind with instrumentation off; the 10,000 keys are
# preloaded (load.c) and written once more by a short POST run (so GETs
# read values a POST wrote, as in bench/http/run.sh), then instrumentation
# goes on for MEASURE seconds of wrk (-t1 -c16, workload.lua) and off again.
# Instructions per request = the instructions callgrind counted in every
# thread of the server (the sweeper's wake-ups included) / the requests the
# server counted meanwhile (/stats, less the /stats request itself).
#
# Workloads: get (10,000 random keys), post (the seed's POST /cache, 32-byte
# values), mix (90/10 GET/POST). Output: a Markdown table on stdout, progress
# on stderr.
#
# Environment: BASE_REV (none: the current build alone) MEASURE (10)
# KEYS (10000) CACHETTE_BIN (build/cachette) WORKLOADS ("get post mix").
# Loopback only; every process started here is stopped on exit or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

BASE_REV=${BASE_REV:-}
MEASURE=${MEASURE:-10}
KEYS=${KEYS:-10000}
CACHETTE_BIN=${CACHETTE_BIN:-build/cachette}
WORKLOADS=${WORKLOADS:-get post mix}

BENCH_NAME=instructions
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

[[ $MEASURE =~ ^[0-9]+$ ]] && ((MEASURE >= 1 && MEASURE <= 120)) || die "MEASURE must be 1..120 seconds"
[[ $KEYS =~ ^[0-9]+$ ]] && ((KEYS >= 1 && KEYS <= 1000000)) || die "KEYS must be 1..1000000"
for w in $WORKLOADS; do
    case $w in get | post | mix) ;; *) die "unknown workload '$w' (get, post, mix)" ;; esac
done
for tool in valgrind callgrind_control wrk curl cc; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachette-instr.XXXXXX")
server_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$server_pid" ] || stop_pid "$server_pid"
    [ -z "$BASE_REV" ] || git worktree remove --force "$tmp/base-src" 2>/dev/null || true
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building the loader"
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/load" "$here/load.c"

builds=("current:$CACHETTE_BIN")
if [ -n "$BASE_REV" ]; then
    build_base "$BASE_REV" "$tmp/base-src"
    builds+=("$base_commit:$tmp/base-src/build/cachette")
fi

requests_so_far() {
    curl -sf --max-time 10 "http://127.0.0.1:$1/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p'
}

# measure WORKLOAD BINARY: sets m_ir (instructions) and m_requests. Runs in this shell, not a
# subshell, so that cleanup knows the server it started and a failure stops the script.
measure() {
    local w=$1 bin=$2 port="" i args=(-- "$w" "$KEYS")
    [ "$w" = mix ] && args+=(10)
    rm -f "$tmp/server.out" "$tmp/server.err" # not a previous server's port: the new one truncates them only once started
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/callgrind.out" \
        "$bin" --port 0 --threads 1 --log-level warn >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    for ((i = 0; i < 300; i++)); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/server.out")
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$tmp/server.err" >&2; die "$bin did not start under callgrind"; }
    timeout 300 "$tmp/load" "$port" "$KEYS" >/dev/null || die "preloading failed"
    timeout 60 wrk -t1 -c16 -d3s -s "$here/workload.lua" "http://127.0.0.1:$port" -- post "$KEYS" >/dev/null
    local before after
    before=$(requests_so_far "$port")
    callgrind_control -i on "$server_pid" >/dev/null
    timeout $((MEASURE + 60)) wrk -t1 -c16 -d"${MEASURE}s" -s "$here/workload.lua" \
        "http://127.0.0.1:$port" "${args[@]}" >"$tmp/wrk.out" 2>&1 || { cat "$tmp/wrk.out" >&2; die "wrk failed"; }
    callgrind_control -i off "$server_pid" >/dev/null
    after=$(requests_so_far "$port")
    stop_pid "$server_pid"
    server_pid=""
    m_ir=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/server.err")
    [ -n "$m_ir" ] || { cat "$tmp/server.err" >&2; die "callgrind reported no count"; }
    m_requests=$((after - before - 1))
}

declare -A per_request=()
for w in $WORKLOADS; do
    for b in "${builds[@]}"; do
        name=${b%%:*} bin=${b#*:}
        say "$w on $name: ${MEASURE}s under callgrind"
        measure "$w" "$bin"
        per_request[$w,$name]=$(awk -v i="$m_ir" -v n="$m_requests" 'BEGIN { printf "%.0f", i / n }')
        say "  $m_requests requests, $m_ir instructions: ${per_request[$w,$name]} per request"
    done
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "### Instructions per request, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`${BASE_REV:+BASE_REV=$BASE_REV }MEASURE=$MEASURE bench/http/instructions.sh\`"
    echo "- Current: $commit ($CACHETTE_BIN); callgrind $(valgrind --version), server --threads 1, wrk -t1 -c16"
    echo
    if [ -n "$BASE_REV" ]; then
        echo "| Workload | instructions/request, current | at $base_commit | current / base |"
        echo "|---|---:|---:|---:|"
        for w in $WORKLOADS; do
            awk -v w="$w" -v c="${per_request[$w,current]}" -v b="${per_request[$w,$base_commit]}" \
                'BEGIN { printf "| %s | %d | %d | %.3fx |\n", w, c, b, c / b }'
        done
    else
        echo "| Workload | instructions/request |"
        echo "|---|---:|"
        for w in $WORKLOADS; do echo "| $w | ${per_request[$w,current]} |"; done
    fi
}
