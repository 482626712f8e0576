#!/usr/bin/env bash
# The Redis protocol beside Redis and Pogocache (issue 16): redis-benchmark
# against cachette's RESP port (--resp-port), Redis 7 (Debian's
# redis-server, persistence off: --save '' --appendonly no) and, when
# POGOCACHE=/path/to/pogocache is given, Pogocache (never built here).
# bench/peers/run.sh (`make bench-peers`) runs it after its own rows, in the
# same run; it also runs alone. In ONLY, "resp" names all its workloads and
# resp-get, resp-set, resp-incr, resp-mset one each; ONLY=resp given to
# bench/peers/run.sh runs this script alone.
#
# Placement: each server alone on CPU 0 (taskset; cachette --threads 1,
# Pogocache --threads 1, Redis's one event loop), redis-benchmark (one
# thread) on CPU 1. Then cachette --threads 2 on both cores, where the load
# generator must share them: redis-benchmark --threads 2, not pinned, so
# the scheduler places its two threads and cachette's two loops on the two
# cores as it likes.
#
# Workloads, RESP_CONNS (50) connections, pipeline 1 and 16, keys of 16
# bytes: redis-benchmark's -r RESP_KEYS (100,000) replaces each
# __rand_int__ in the command by a random number in 0..RESP_KEYS-1 written
# as 12 digits, behind a 4-byte prefix that names the key set. The
# commands are given literally (redis-benchmark's custom-command mode, not
# its -t tests) so every key has 16 bytes; values are 'x' repeated:
#   get   GET key:<12 digits> (32-byte values), GET kib:<12 digits> (1 KiB)
#   set   SET key:… <32 bytes>, SET kib:… <1 KiB>
#   incr  INCR ctr:… (the counters start at 0)
#   mset  MSET of 10 pairs key:… <32 bytes> (or kib:… <1 KiB>): one request
#         (Pogocache has no MSET, so no MSET rows)
# Every key of the three sets is preloaded (redis-cli --pipe), so every GET
# hits and reads a value of the row's size.
#
# Figures per run: requests per second (redis-benchmark's own), p99, and
# the server's CPU time per request: utime+stime of its process (all its
# threads) from /proc/PID/stat over the run, divided by the requests. That
# compares servers when redis-benchmark saturates its own core before the
# server does (at pipeline 1 it usually does; the table says where), and
# it moves much less than req/s when other processes load the shared
# machine. Its inverse, requests per server core-second, is the figure of
# the issue's goal. The busy time of CPU 0 (/proc/stat) per request is
# recorded too (raw file), as bench/peers/run.sh's "CPU µs/req".
#
# A warm-up pass (RESP_WARMUP seconds per row, discarded, which also sizes
# redis-benchmark's -n to the row's rate), then RESP_ROUNDS interleaved
# rounds of every row, about RESP_SECONDS each, a row's servers one after
# the other. Medians; ratios are medians of the rounds' ratios (cachette's
# run over the peer's run of the same round, seconds apart). A run where processes not ours took
# more than NOISE_PCT percent of a core (or the hypervisor stole that much)
# is flagged NOISY, as in bench/peers/run.sh.
#
# Goals (issue 16): on GET and SET, at least 1.5x Redis's requests per
# server core-second and more than Pogocache's; with --threads 2, the
# figure for two cores (no goal).
#
# Output: a Markdown table on stdout, progress on stderr, every per-run
# figure in bench/results/peers-resp-<timestamp>.txt.
#
# Environment: RESP_ROUNDS (3) RESP_SECONDS (2) RESP_WARMUP (1)
# RESP_KEYS (100000) RESP_CONNS (50) NOISE_PCT (3) CLIENT_SAT (95) ONLY
# CACHETTE_BIN (build/cachette) POGOCACHE (unset).
#
# Everything is bounded in time (a watchdog stops the run past its budget),
# talks only to 127.0.0.1, and every process started here is stopped on exit,
# error, Ctrl-C or SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
BENCH_NAME=bench-peers-resp
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
export LC_ALL=C # awk with a decimal point

bench_params bench/peers/resp.sh bench-peers "RESP_ROUNDS 3 1 15" "RESP_SECONDS 2 1 60 seconds" \
    "RESP_WARMUP 1 0 30 seconds" "RESP_KEYS 100000 1 1000000" "RESP_CONNS 50 1 1000" "NOISE_PCT 3 0 200" \
    "CLIENT_SAT 95 1 100" "ONLY" "CACHETTE_BIN build/cachette" "POGOCACHE"
SERVER_CPU=0
CLIENT_CPU=1

for tool in redis-server redis-cli redis-benchmark taskset timeout awk getconf; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh peers installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
if [ -n "$POGOCACHE" ]; then
    [ -x "$POGOCACHE" ] || die "POGOCACHE=$POGOCACHE is not an executable file"
fi

# ONLY: "resp" is every workload here; other names than resp-* belong to
# bench/peers/run.sh and are passed over.
all_workloads=(get set incr mset)
workloads=()
if [ -z "$ONLY" ] || [[ ",$ONLY," == *",resp,"* ]]; then
    workloads=("${all_workloads[@]}")
else
    for w in ${ONLY//,/ }; do
        [[ $w == resp-* ]] || continue
        [[ " ${all_workloads[*]} " == *" ${w#resp-} "* ]] ||
            die "ONLY: no workload '$w' (have: resp ${all_workloads[*]/#/resp-})"
        workloads+=("${w#resp-}")
    done
    ((${#workloads[@]})) || die "ONLY=$ONLY names no workload of this script (resp, resp-get, resp-set, resp-incr, resp-mset)"
fi

bench_files "peers-resp-" peers-resp "servers on CPU $SERVER_CPU, redis-benchmark on CPU $CLIENT_CPU"

# ---------------------------------------------------------------- cleanup ---

pids=()    # every long-lived process started here
job_pid="" # redis-benchmark or a loader in progress, if any

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # shellcheck disable=SC2086 # the pids are words, or none
    finish_run "$rc" "*.out *.err" $job_pid "${pids[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------------- rows ---

# A row is TEST:VALUE_BYTES:PIPELINE; INCR has no value.
rows=()
for w in "${workloads[@]}"; do
    for p in 1 16; do
        if [ "$w" = incr ]; then
            rows+=("$w:0:$p")
        else
            rows+=("$w:32:$p" "$w:1024:$p")
        fi
    done
done
servers=(cachette redis)
[ -n "$POGOCACHE" ] && servers+=(pogocache)
servers+=(cachette-t2)
# Pogocache has no MSET (nor STRLEN, CONFIG): it answers "ERR unknown
# command", at which redis-benchmark stops, so it has no MSET rows.
serves() { [[ $1 != pogocache || $2 != mset:* ]]; } # serves SERVER ROW
runs=()
for r in "${rows[@]}"; do
    for s in "${servers[@]}"; do
        if serves "$s" "$r"; then runs+=("$r/$s"); fi
    done
done

row_label() { # row_label ROW
    local t v p
    IFS=: read -r t v p <<<"$1"
    case $t in
    get) printf 'GET, %s values' "$(vsize "$v")" ;;
    set) printf 'SET, %s values' "$(vsize "$v")" ;;
    incr) printf 'INCR' ;;
    mset) printf 'MSET 10 keys, %s values' "$(vsize "$v")" ;;
    esac
    printf ', -P %s' "$p"
}
vsize() { if (($1 == 1024)); then echo "1 KiB"; else echo "$1-byte"; fi; }

display() {
    case $1 in
    cachette) echo "cachette --threads 1" ;;
    cachette-t2) echo "cachette --threads 2 (2 cores, shared with redis-benchmark)" ;;
    redis) echo "redis 7" ;;
    *) echo "$1" ;;
    esac
}

# Per run: redis-benchmark's start and the measuring around it, about 0.3 s.
per_row=$((RESP_WARMUP + RESP_ROUNDS * RESP_SECONDS + (RESP_ROUNDS + 1) * 3 / 10))
estimate=$((${#runs[@]} * per_row + ${#servers[@]} * (3 + RESP_KEYS * 3 / 100000) + 5))
budget=$((estimate * 2 + 300))
say "${#runs[@]} rows, $RESP_ROUNDS round(s) of about ${RESP_SECONDS}s after a ${RESP_WARMUP}s warm-up: about $(((estimate + 59) / 60)) minutes"
start_watchdog "$budget"

# This shell and what it starts run on the client's core.
taskset -pc "$CLIENT_CPU" $$ >/dev/null
# A copy of the binary, so a rebuild during the run changes nothing halfway.
cp -p "$CACHETTE_BIN" "$tmp/cachette"

# --------------------------------------------------------------- servers ---

# The values: 'x' repeated, as redis-benchmark's -d writes them.
v32=$(printf 'x%.0s' {1..32})
v1k=$(printf 'x%.0s' {1..1024})

# Each start_* sets port[NAME] and srv_pid[NAME], and adds the process to pids.
declare -A port=() srv_pid=()

start_cachette() { # start_cachette NAME CPUS THREADS
    taskset -c "$2" "$tmp/cachette" --port 0 --resp-port 0 --threads "$3" --log-level warn \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    srv_pid[$1]=$!
    pids+=("${srv_pid[$1]}")
    wait_banner "$tmp/$1.out" "${srv_pid[$1]}" '.* redis://127\.0\.0\.1:\([0-9]*\).*' "port[$1]" ||
        { cat "$tmp/$1.err" >&2; die "$1 did not start"; }
}

resp_ping() { [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

start_peer() { # start_peer NAME: redis or pogocache, on the server's core
    local try free
    for ((try = 0; try < 5; try++)); do
        pick_port free
        case $1 in
        redis)
            mkdir -p "$tmp/redis"
            taskset -c "$SERVER_CPU" redis-server --port "$free" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize no --dir "$tmp/redis" >"$tmp/redis.out" 2>&1 &
            ;;
        pogocache)
            taskset -c "$SERVER_CPU" "$POGOCACHE" -h 127.0.0.1 -p "$free" --threads 1 >"$tmp/pogocache.out" 2>&1 &
            ;;
        esac
        srv_pid[$1]=$!
        pids+=("${srv_pid[$1]}")
        if wait_until 10 resp_ping "$free"; then
            port[$1]=$free
            return 0
        fi
        stop_pid "${srv_pid[$1]}"
    done
    cat "$tmp/$1.out" >&2
    die "$1 did not start"
}

# preload NAME: every key of the three sets, over the Redis protocol with
# redis-cli --pipe, then one key of each read back.
preload() {
    local out n=$RESP_KEYS k
    out=$(awk -v n="$n" 'BEGIN {
        s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; v32 = s
        k = ""; for (i = 0; i < 32; i++) k = k s
        for (i = 0; i < n; i++) {
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n", i, v32
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkib:%012d\r\n$1024\r\n%s\r\n", i, k
            printf "*3\r\n$3\r\nSET\r\n$16\r\nctr:%012d\r\n$1\r\n0\r\n", i
        }
    }' | timeout 300 taskset -c "$CLIENT_CPU" redis-cli -h 127.0.0.1 -p "${port[$1]}" --pipe 2>&1) ||
        { echo "$out" >&2; die "preloading $1 failed"; }
    [[ $out == *"errors: 0, replies: $((n * 3))"* ]] || { echo "$out" >&2; die "preloading $1 failed"; }
    k=$(printf '%012d' $((n - 1)))
    # GET, as Pogocache has no STRLEN.
    if [ "$(redis-cli -h 127.0.0.1 -p "${port[$1]}" get "key:$k")" != "$v32" ] ||
        [ "$(redis-cli -h 127.0.0.1 -p "${port[$1]}" get "kib:$k")" != "$v1k" ] ||
        [ "$(redis-cli -h 127.0.0.1 -p "${port[$1]}" incrby "ctr:$k" 0)" != 0 ]; then
        die "$1 does not read back what was preloaded"
    fi
}

# ------------------------------------------------------------- one run ---

# io_calls VAR PID: VAR=(reads writes), the read and write system calls of the
# process so far (syscr and syscw of /proc/PID/io, all its threads: read,
# readv, recv… and write, writev, send…).
io_calls() {
    local -n _io=$1
    local k v
    _io=(0 0)
    while read -r k v; do
        case $k in syscr:) _io[0]=$v ;; syscw:) _io[1]=$v ;; esac
    done <"/proc/$2/io"
}

# sys_ticks VAR PID: VAR = stime of the process (all its threads), the kernel's
# share of its CPU time.
sys_ticks() {
    local -n _sys=$1
    local line
    _sys=0
    read -r line 2>/dev/null <"/proc/$2/stat" || return 0
    local -a f
    read -ra f <<<"${line##*) }"
    _sys=${f[12]}
}

declare -A rate=() # the last req/s of each run, to size the next -n

# bench_cmd ROW SERVER SECONDS: sets cmd, redis-benchmark's command line.
bench_cmd() {
    local t v p s=$2 n i prefix=key value=$v32
    IFS=: read -r t v p <<<"$1"
    ((v == 1024)) && prefix=kib value=$v1k
    n=$(awk -v r="${rate[$1/$s]:-$((p == 1 ? 30000 : 300000))}" -v s="$3" 'BEGIN { printf "%d", r * s }')
    ((n >= 2000 * p)) || n=$((2000 * p))
    cmd=(redis-benchmark -h 127.0.0.1 -p "${port[$s]}" -c "$RESP_CONNS" -n "$n" -r "$RESP_KEYS" -P "$p" --csv)
    [ "$s" = cachette-t2 ] && cmd+=(--threads 2)
    case $t in
    get) cmd+=(GET "$prefix:__rand_int__") ;;
    set) cmd+=(SET "$prefix:__rand_int__" "$value") ;;
    incr) cmd+=(INCR "ctr:__rand_int__") ;;
    mset)
        cmd+=(MSET)
        for ((i = 0; i < 10; i++)); do cmd+=("$prefix:__rand_int__" "$value"); done
        ;;
    esac
}

# run_one ROW SERVER SECONDS: one run; sets r_* with its figures.
run_one() {
    local row=$1 s=$2 rc=0 pid=${srv_pid[$2]}
    bench_cmd "$row" "$s" "$3"
    kill -0 "$pid" 2>/dev/null || die "$s (pid $pid) has exited before $row"
    local -a place=(taskset -c "$CLIENT_CPU")
    [ "$s" = cachette-t2 ] && place=(taskset -c "$SERVER_CPU,$CLIENT_CPU")

    # shellcheck disable=SC2034 # filled and read through namerefs
    local -A pa=() pb=()
    snap_procs pa
    local srv_b srv_a sys_b sys_a cli_b cli_a ours_b ours_a
    local -a c0b c1b c0a c1a iob ioa
    io_calls iob "$pid"
    proc_ticks ours_b "${pids[@]}"
    proc_ticks srv_b "$pid"
    sys_ticks sys_b "$pid"
    children_ticks cli_b
    cpu_busy c0b "$SERVER_CPU"
    cpu_busy c1b "$CLIENT_CPU"
    local t0=$EPOCHREALTIME
    job_to "$tmp/load.out" "${place[@]}" timeout -k 5 $((RESP_SECONDS * 5 + 60)) "${cmd[@]}" || rc=$?
    local t1=$EPOCHREALTIME
    cpu_busy c0a "$SERVER_CPU"
    cpu_busy c1a "$CLIENT_CPU"
    children_ticks cli_a
    proc_ticks srv_a "$pid"
    sys_ticks sys_a "$pid"
    io_calls ioa "$pid"
    proc_ticks ours_a "${pids[@]}"
    snap_procs pb
    # redis-benchmark exits 1 at the first error reply.
    ((rc == 0)) || { tail -5 "$tmp/load.out" >&2; die "redis-benchmark failed (exit $rc) on $row/$s: ${cmd[*]:0:12}…"; }

    r_requests=${cmd[8]}
    read -r r_rps r_p50 r_p99 < <(awk -F, 'END { gsub(/"/, ""); print $2, $5, $7 }' "$tmp/load.out")
    awk -v x="$r_rps" 'BEGIN { exit !(x > 0) }' || { cat "$tmp/load.out" >&2; die "no figures from redis-benchmark on $row/$s"; }
    rate[$row/$s]=$r_rps
    r_cpu0=$((c0a[0] - c0b[0]))
    r_cpu1=$((c1a[0] - c1b[0]))
    r_steal=$((c0a[1] - c0b[1] + c1a[1] - c1b[1]))
    r_server=$((srv_a - srv_b))
    r_sys=$((sys_a - sys_b))
    r_reads=$(awk -v a="${ioa[0]}" -v b="${iob[0]}" -v n="$r_requests" 'BEGIN { printf "%.3f", (a - b) / n }')
    r_writes=$(awk -v a="${ioa[1]}" -v b="${iob[1]}" -v n="$r_requests" 'BEGIN { printf "%.3f", (a - b) / n }')
    r_client=$((cli_a - cli_b))
    r_elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    r_loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    read -r r_srv_us r_core_us r_srv_pct r_busy1 r_sys_pct < <(awk -v s="$r_server" -v c0="$r_cpu0" -v c1="$r_cpu1" \
        -v hz="$hz" -v n="$r_requests" -v e="$r_elapsed" -v k="$r_sys" 'BEGIN {
            printf "%.3f %.3f %.0f %.0f %.0f\n", s * 1e6 / hz / n, c0 * 1e6 / hz / n, s * 100 / hz / e, c1 * 100 / hz / e,
                s ? k * 100 / s : 0 }')
    # Noise: busy ticks of both cores not explained by our processes.
    r_other=$((r_cpu0 + r_cpu1 - r_client - (ours_a - ours_b)))
    r_others=$(other_ticks=$r_other top_others pa pb $$ "${pids[@]}")
    r_noisy=$(awk -v o="$r_other" -v st="$r_steal" -v e="$r_elapsed" -v hz="$hz" -v pct="$NOISE_PCT" \
        'BEGIN { lim = e * hz * pct / 100; print (o > lim || st > lim) ? "NOISY" : "ok" }')
}

record() { # record ROUND ROW SERVER
    printf '%-6s %-12s %-12s %10s %9s %7s %7s %8s %8s %5s %5s %6s %6s %5s %7s %5s %5s %6s %6s %6s %5s %-6s %-14s %s\n' \
        "$1" "$2" "$3" "$r_rps" "$r_requests" "$r_p50" "$r_p99" "$r_srv_us" "$r_core_us" "$r_srv_pct" "$r_sys_pct" \
        "$r_reads" "$r_writes" "$r_busy1" \
        "$r_elapsed" "$r_cpu0" "$r_cpu1" "$r_server" "$r_client" "$r_other" "$r_steal" "$r_noisy" \
        "${r_loadavg// /,}" "${r_others:--}" >>"$raw"
}

# ---------------------------------------------------------------- setup ---

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include Makefile 2>/dev/null || commit+=" + uncommitted changes in src/include/Makefile"
commit+="; binary $CACHETTE_BIN built $(date -u -r "$tmp/cachette" '+%Y-%m-%d %H:%M UTC')"
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
machine="$ncpu CPUs (nproc), ${cpu_model:-unknown CPU}, Linux $(uname -r)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
versions="cachette $("$tmp/cachette" --version 2>&1 | head -1 | awk '{ print $NF }'),"
versions+=" redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'),"
versions+=" redis-benchmark $(redis-benchmark --version | awk '{ print $2 }')"
[ -n "$POGOCACHE" ] && versions+=", pogocache $("$POGOCACHE" --version 2>&1 | head -1 | awk '{ print $NF }')"

preflight_verdict

bench_raw_header bench/peers/resp.sh
{
    echo "rounds $RESP_ROUNDS of about ${RESP_SECONDS}s, warm-up ${RESP_WARMUP}s, keys $RESP_KEYS, connections $RESP_CONNS, CLK_TCK $hz, noise limit ${NOISE_PCT}% of a core"
    echo "preflight: $quiet_line"
    echo
    echo "# row: test:value bytes:pipeline; srv_us/r: the server process's utime+stime per request;"
    echo "# core_us/r: CPU $SERVER_CPU's busy time per request (of no use for cachette-t2, which shares it); srv%: the server's"
    echo "# CPU time over the run's wall time; sys%: the kernel's share of the server's CPU time (stime over utime+stime);"
    echo "# reads/r, writes/r: the server's read and write system calls per request (/proc/PID/io syscr, syscw);"
    echo "# busy1: CPU $CLIENT_CPU's busy percent; cpu0/cpu1/server/client/other: ticks;"
    echo "# other: cpu0 + cpu1 - client (redis-benchmark + this shell) - every process started here"
    printf '%-6s %-12s %-12s %10s %9s %7s %7s %8s %8s %5s %5s %6s %6s %5s %7s %5s %5s %6s %6s %6s %5s %-6s %-14s %s\n' \
        round row server req/s requests p50_ms p99_ms srv_us/r core_us/r srv% sys% reads/r writes/r busy1 elapsed cpu0 cpu1 server client \
        other steal verdict loadavg top_others
} >>"$raw"

say "starting the servers"
start_cachette cachette "$SERVER_CPU" 1
start_peer redis
[ -n "$POGOCACHE" ] && start_peer pogocache
start_cachette cachette-t2 "$SERVER_CPU,$CLIENT_CPU" 2
for s in "${servers[@]}"; do
    say "  $s: pid ${srv_pid[$s]}, port ${port[$s]}"
    say "  preloading $s: $(thousands "$RESP_KEYS") keys of each set"
    preload "$s"
done

# ------------------------------------------------------------------ runs ---

declare -A rps=() p99=() srv_us=() srv_pct=() sys_pct=() reads=() writes=() busy1=() noisy=()
t_start=$SECONDS
if ((RESP_WARMUP > 0)); then
    say "warm-up: ${RESP_WARMUP}s per row"
    for r in "${runs[@]}"; do
        run_one "${r%/*}" "${r#*/}" "$RESP_WARMUP"
        record warmup "${r%/*}" "${r#*/}"
    done
fi
for ((round = 1; round <= RESP_ROUNDS; round++)); do
    for r in "${runs[@]}"; do
        row=${r%/*} s=${r#*/}
        say "round $round/$RESP_ROUNDS: $row $s ($((SECONDS - t_start))s in)"
        run_one "$row" "$s" "$RESP_SECONDS"
        record "$round" "$row" "$s"
        rps[$r]+="$r_rps "
        p99[$r]+="$r_p99 "
        srv_us[$r]+="$r_srv_us "
        srv_pct[$r]+="$r_srv_pct "
        sys_pct[$r]+="$r_sys_pct "
        reads[$r]+="$r_reads "
        writes[$r]+="$r_writes "
        busy1[$r]+="$r_busy1 "
        [[ $r_noisy == ok ]] || noisy[$r]=$((${noisy[$r]:-0} + 1))
        say "  $r_rps req/s, p99 $r_p99 ms, server ${r_srv_us} µs/req (${r_srv_pct}% of a core, ${r_sys_pct}% of it in the kernel), CPU $CLIENT_CPU ${r_busy1}%, $r_noisy${r_others:+ (others: $r_others)}"
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo
    echo "# redis-benchmark's command per row (last round; values shortened)"
    for r in "${runs[@]}"; do
        bench_cmd "${r%/*}" "${r#*/}" "$RESP_SECONDS"
        echo "load: $r: ${cmd[*]//$v1k/<1024 x>}" | sed "s/$v32/<32 x>/g"
    done
} >>"$raw"

# ----------------------------------------------------------------- table ---

# round_ratios "A1 A2…" "B1 B2…": the median of A_i / B_i, as "1.23x": the
# runs of round i, cachette's and a peer's, ran seconds apart, under much the
# same load from others, so the ratio of a round moves less than either.
round_ratios() {
    local -a a b
    read -ra a <<<"$1"
    read -ra b <<<"$2"
    local i out=""
    for i in "${!a[@]}"; do out+="$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { printf "%.4f", x / y }') "; done
    printf '%.2fx' "$(median <<<"$out")"
}

fmt_int() { thousands "$(printf '%.0f' "$1")"; }

declare -A m_rps=() m_p99=() m_us=() m_pct=() m_sys=() m_rd=() m_wr=() m_b1=()
for r in "${runs[@]}"; do
    m_rps[$r]=$(median <<<"${rps[$r]}")
    m_p99[$r]=$(median <<<"${p99[$r]}")
    m_us[$r]=$(median <<<"${srv_us[$r]}")
    m_pct[$r]=$(median <<<"${srv_pct[$r]}")
    m_sys[$r]=$(median <<<"${sys_pct[$r]}")
    m_rd[$r]=$(median <<<"${reads[$r]}")
    m_wr[$r]=$(median <<<"${writes[$r]}")
    m_b1[$r]=$(median <<<"${busy1[$r]}")
done

met=0 missed=0
{
    echo "### The Redis protocol beside Redis and Pogocache, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Machine: $machine"
    echo "- Commit: $commit"
    echo "- Versions: $versions"
    echo "- Setup: each server alone on CPU $SERVER_CPU (cachette \`--threads 1 --resp-port\`, redis-server \`--save '' --appendonly no\`$([ -z "$POGOCACHE" ] || echo ",")"
    echo "  ${POGOCACHE:+pogocache \`--threads 1\`; }redis-benchmark (1 thread) on CPU $CLIENT_CPU; cachette \`--threads 2\` on both cores"
    echo "  with \`redis-benchmark --threads 2\` unpinned beside it. \`-c $RESP_CONNS -r $RESP_KEYS\`, keys of 16 bytes (\`key:\`, \`kib:\`"
    echo "  or \`ctr:\` and 12 digits), every key preloaded. $RESP_ROUNDS interleaved round(s) of about ${RESP_SECONDS} s after a"
    echo "  ${RESP_WARMUP} s warm-up; medians, and ratios as medians of the rounds' ratios. *Server µs/req*: the server process's utime+stime per request; *per core-s*:"
    echo "  1e6 / that, the requests a second one server core serves. *Server %*: its CPU over wall time; *CPU $CLIENT_CPU*:"
    echo "  redis-benchmark's core, busy percent (≥${CLIENT_SAT}%: the load generator saturated first). *Kernel*: the share"
    echo "  of the server's CPU time spent in the kernel (stime). *Reads + writes*: its read and write system calls per"
    echo "  request (/proc/PID/io)."
    echo "- Load average: $load_start at start, $load_end after the rounds. Preflight: $quiet_line."
    echo
    echo "| Workload | Server | req/s | p99 | server µs/req | per core-s | kernel | reads + writes /req | server % / CPU $CLIENT_CPU % | cachette ÷ it: req/s | cachette ÷ it: per core-s | Goal | Noise |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    for row in "${rows[@]}"; do
        first=1
        t=${row%%:*}
        for s in "${servers[@]}"; do
            serves "$s" "$row" || continue
            r="$row/$s" c="$row/cachette"
            label=""
            ((first)) && label=$(row_label "$row")
            first=0
            per_core=$(awk -v u="${m_us[$r]}" 'BEGIN { printf "%d", 1e6 / u }')
            rr="—" cr="—" goal="—"
            case $s in
            redis | pogocache)
                rr=$(round_ratios "${rps[$c]}" "${rps[$r]}")
                cr=$(round_ratios "${srv_us[$r]}" "${srv_us[$c]}")
                if [ "$t" = get ] || [ "$t" = set ]; then
                    want=1.5
                    [ "$s" = pogocache ] && want=1
                    if awk -v x="${cr%x}" -v w="$want" 'BEGIN { exit !(w > 1 ? x >= w : x > w) }'; then
                        goal="met"
                        met=$((met + 1))
                    else
                        goal="**missed**"
                        missed=$((missed + 1))
                    fi
                    if [ "$s" = redis ]; then goal="≥1.5x per core-s: $goal"; else goal="ahead per core-s: $goal"; fi
                else
                    goal="context"
                fi
                ;;
            cachette-t2)
                goal="$(round_ratios "${rps[$r]}" "${rps[$c]}") the req/s of --threads 1"
                ;;
            esac
            n=${noisy[$r]:-0}
            note="clean"
            ((n == 0)) || note="NOISY ($n of $RESP_ROUNDS)"
            echo "| $label | $(display "$s") | $(fmt_int "${m_rps[$r]}") | $(printf '%.2f ms' "${m_p99[$r]}") | ${m_us[$r]} | $(fmt_int "$per_core") | ${m_sys[$r]}% | ${m_rd[$r]} + ${m_wr[$r]} | ${m_pct[$r]} / ${m_b1[$r]} | $rr | $cr | $goal | $note |"
        done
    done
    echo
    echo "Goals: $met met, $missed missed (GET and SET rows: ≥1.5x Redis's requests per server core-second,"
    echo "more than Pogocache's). MSET counts one request per 10 keys. For cachette \`--threads 2\`, *server %* is of one"
    echo "core (up to 200) and *CPU $CLIENT_CPU* is shared with cachette."
    echo
    echo "Raw per-run figures: \`$raw\`."
} >"$tmp/table.md"

{ echo; cat "$tmp/table.md"; } >>"$raw"
cat "$tmp/table.md"
