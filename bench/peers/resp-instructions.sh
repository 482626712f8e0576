#!/usr/bin/env bash
# Instructions per request over the Redis protocol: cachette's RESP port,
# Redis 7 and (POGOCACHE=/path) Pogocache, each under valgrind's callgrind,
# driven by redis-benchmark as bench/peers/resp.sh drives them.
#
# bench/peers/resp.sh's figures move with the shared machine's load; the
# user-space instructions a request executes barely do, so they tell where
# a server's own code stands beside another's (not the kernel's share,
# which callgrind does not see: see the kernel column of resp.sh's table).
# Each server starts fresh under callgrind with instrumentation off, its
# KEYS (10,000) keys of each set are preloaded (redis-cli --pipe: key: with
# 32-byte values, kib: with 1 KiB ones), then for each workload the counters
# are zeroed, instrumentation goes on for REQUESTS requests of
# redis-benchmark (-c 50 -r KEYS -P PIPELINE), off again, and the counters
# are dumped. Instructions per request = the dump's total (every thread) /
# the requests. redis-benchmark's own two CONFIG GETs at its start and its
# 50 connections' setup are in the count, about 0.1% of it.
#
# Workloads (as in resp.sh): GET and SET of 32-byte and 1 KiB values, at
# pipeline 1 and 16 (1 KiB: 16 only), INCR of the ctr: counters and MSET
# of 10 pairs at pipeline 16. Pogocache has no MSET: "n/a". Output: a Markdown table on stdout, progress on stderr,
# and with KEEP=dir the callgrind files there, for callgrind_annotate.
#
# Environment: KEYS (10000) REQUESTS (160000 at pipeline 16, a tenth at 1)
# CACHETTE_BIN (build/cachette) POGOCACHE (unset) KEEP (unset).
# Loopback only; every process started here is stopped on exit or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
BENCH_NAME=resp-instructions
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

bench_params bench/peers/resp-instructions.sh "" "KEYS 10000 1 1000000" "REQUESTS 160000 1000 10000000" \
    "CACHETTE_BIN build/cachette" "POGOCACHE" "KEEP"
for tool in valgrind callgrind_control redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh peers installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
[ -z "$POGOCACHE" ] || [ -x "$POGOCACHE" ] || die "POGOCACHE=$POGOCACHE is not an executable file"
[ -z "$KEEP" ] || mkdir -p "$KEEP"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachette-resp-instr.XXXXXX")
server_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$server_pid" ] || stop_pid "$server_pid"
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

servers=(cachette redis)
[ -z "$POGOCACHE" ] || servers+=(pogocache)
workloads=(get:32:1 get:32:16 set:32:1 set:32:16 get:1024:16 set:1024:16 incr:0:16 mset:32:16 mset:1024:16)
v32=$(printf 'x%.0s' {1..32})
v1k=$(printf 'x%.0s' {1..1024})

resp_ping() { [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# dumped SERVER WORKLOAD: true once callgrind's dump for it is whole (its
# totals line, the last, written).
dumped() {
    local f
    f=$(grep -l "^desc: Trigger: dump $2\$" "$tmp/$1".* 2>/dev/null) && grep -q '^totals:' "$f"
}

# measure SERVER: one fresh server under callgrind; sets ir[SERVER/WORKLOAD].
declare -A ir=()
measure() {
    local s=$1 port w t v p n f i
    pick_port port
    local -a server
    case $s in
    cachette) server=("$CACHETTE_BIN" --port 0 --resp-port "$port" --threads 1 --log-level warn) ;;
    redis) server=(redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp") ;;
    pogocache) server=("$POGOCACHE" -h 127.0.0.1 -p "$port" --threads 1) ;;
    esac
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/$s.%p" "${server[@]}" \
        >"$tmp/$s.out" 2>"$tmp/$s.err" &
    server_pid=$!
    wait_until 60 resp_ping "$port" || { cat "$tmp/$s.err" >&2; die "$s did not start under callgrind"; }
    awk -v n="$KEYS" -v a="$v32" -v b="$v1k" 'BEGIN { for (i = 0; i < n; i++) {
        printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n", i, a
        printf "*3\r\n$3\r\nSET\r\n$16\r\nkib:%012d\r\n$1024\r\n%s\r\n", i, b
        printf "*3\r\n$3\r\nSET\r\n$16\r\nctr:%012d\r\n$1\r\n0\r\n", i } }' |
        timeout 600 redis-cli -h 127.0.0.1 -p "$port" --pipe >"$tmp/fill.out" 2>&1 ||
        { cat "$tmp/fill.out" >&2; die "preloading $s failed"; }
    for w in "${workloads[@]}"; do
        IFS=: read -r t v p <<<"$w"
        [[ $s != pogocache || $t != mset ]] || continue
        n=$REQUESTS
        ((p > 1)) || n=$((REQUESTS / 10))
        local key=key value=$v32
        ((v == 1024)) && key=kib value=$v1k
        local -a cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$n" -r "$KEYS" -P "$p" --csv)
        case $t in
        get) cmd+=(GET "$key:__rand_int__") ;;
        set) cmd+=(SET "$key:__rand_int__" "$value") ;;
        incr) cmd+=(INCR "ctr:__rand_int__") ;;
        mset)
            cmd+=(MSET)
            for ((i = 0; i < 10; i++)); do cmd+=("$key:__rand_int__" "$value"); done
            ;;
        esac
        say "$s: $t ${v}-byte values, -P $p, $n requests"
        callgrind_control -z "$server_pid" >/dev/null
        callgrind_control -i on "$server_pid" >/dev/null
        timeout 600 "${cmd[@]}" >"$tmp/bench.out" 2>&1 || { cat "$tmp/bench.out" >&2; die "redis-benchmark failed on $s"; }
        callgrind_control -i off "$server_pid" >/dev/null
        callgrind_control -d "${w//:/-}" "$server_pid" >/dev/null # a colon would end the reason
        wait_until 30 dumped "$s" "${w//:/-}" || { tail -5 "$tmp/$s.err" >&2; die "no callgrind dump for $s $w"; }
        f=$(grep -l "^desc: Trigger: dump ${w//:/-}\$" "$tmp/$s".*)
        ir[$s/$w]=$(awk -v n="$n" '/^totals:/ { printf "%.0f", $2 / n }' "$f")
        say "  ${ir[$s/$w]} instructions per request"
        [ -z "$KEEP" ] || cp "$f" "$KEEP/callgrind.$s.${w//:/-}"
        rm -f "$f"
    done
    stop_pid "$server_pid"
    server_pid=""
}

for s in "${servers[@]}"; do measure "$s"; done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include 2>/dev/null || commit+=" + uncommitted changes in src/include"
{
    echo "### Instructions per request over the Redis protocol, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Commit $commit ($CACHETTE_BIN); $(valgrind --version), redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')${POGOCACHE:+, pogocache $("$POGOCACHE" --version 2>&1 | head -1 | awk '{ print $NF }')}"
    echo "- Each server --threads 1 (Redis: its one loop) under callgrind, redis-benchmark -c 50 -r $KEYS, user space only"
    echo
    printf '| Workload |'
    for s in "${servers[@]}"; do printf ' %s |' "$s"; done
    for s in "${servers[@]:1}"; do printf ' cachette ÷ %s |' "$s"; done
    echo
    printf '|---|'
    for ((i = 0; i < ${#servers[@]} * 2 - 1; i++)); do printf -- '---:|'; done
    echo
    for w in "${workloads[@]}"; do
        IFS=: read -r t v p <<<"$w"
        case $t in
        incr) printf '| INCR, -P %s |' "$p" ;;
        mset) printf '| MSET 10 keys, %s-byte values, -P %s |' "$v" "$p" ;;
        *) printf '| %s, %s-byte values, -P %s |' "${t^^}" "$v" "$p" ;;
        esac
        for s in "${servers[@]}"; do
            if [ -n "${ir[$s/$w]:-}" ]; then printf ' %s |' "$(thousands "${ir[$s/$w]}")"; else printf ' n/a |'; fi
        done
        for s in "${servers[@]:1}"; do
            if [ -n "${ir[$s/$w]:-}" ]; then
                awk -v a="${ir[cachette/$w]}" -v b="${ir[$s/$w]}" 'BEGIN { printf " %.2fx |", a / b }'
            else
                printf ' — |'
            fi
        done
        echo
    done
}
