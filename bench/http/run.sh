#!/usr/bin/env bash
# cachette's HTTP benchmark, against nginx in the same run (`make bench`).
#
# The server (cachette --threads 1, or nginx with one worker) is pinned to
# CPU 0 and wrk to CPU 1 (wrk -t1 -c64, --latency). Workloads:
#
#   nginx   GET /cache/user42, a fixed {"key":"user42","value":"Alice"}: the
#           near-limit reference for one core
#   get1    cachette, GET /cache/user42 (preloaded)
#   getN    cachette, GET over 10,000 preloaded keys, one chosen at random
#           per request (workload.lua)
#   post    cachette, POST /cache over the same 10,000 keys, 32-byte values
#   mix     cachette, 90% GET / 10% POST over the same 10,000 keys
#   binput  cachette, PUT of 1 KiB binary values (application/octet-stream,
#           all 256 byte values) over 10,000 keys
#   binget  cachette, GET ?raw of those values: the exact bytes back
#
# After a warm-up pass (WARMUP seconds each, discarded) come ROUNDS rounds,
# interleaved (nginx get1 getN post mix, nginx get1 ...), each run DURATION
# seconds. Per workload it reports the median req/s, the median p99 latency,
# and the median CPU time per request of the server's core: the busy ticks of
# "cpu0" in /proc/stat (user+nice+system+irq+softirq+steal) over the run,
# divided by the requests wrk completed. Ratios are against nginx's medians
# from the same invocation.
#
# Noise: the script itself runs on CPU 1 and is idle during a run, so CPU 0
# and CPU 1 should be busy only with the server and wrk. Each run compares
# the busy ticks of both CPUs with the CPU time the benchmark's own processes
# consumed (/proc/PID/stat utime+stime, wrk's through this shell's `times`);
# a run where other processes took more than NOISE_PCT percent of one core,
# or where the hypervisor stole more than that, is flagged NOISY, with the
# load average and the top other consumers in the raw results.
#
# BASE_REV=<commit> adds cachette built at that commit (in a temporary git
# worktree, with the same Makefile flags) beside the current binary: each
# cachette workload is paired in every round with the same workload against
# the base build ("base get1", ...; the base runs first in even rounds, so
# neither build always follows the other), and the table gains each
# workload's median per-round ratio against it: req/s and CPU per request,
# current over base. This is how a change shows it cost nothing beyond noise.
#
# Then a memory figure: a fresh cachette loaded with MEM_ENTRIES entries
# (16-byte keys, 32-byte string values) by load.c (pipelined POSTs over one
# connection, built here with cc), reporting VmRSS and /stats bytes_used.
#
# Output: a Markdown table on stdout (for docs/BENCHMARKS.md), progress on
# stderr, and every per-run figure in bench/results/<timestamp>.txt.
#
# Environment: DURATION (10) ROUNDS (3) WARMUP (3) CONNECTIONS (64)
# KEYS (10000) MEM_ENTRIES (1000000; 0 skips the memory figure)
# NOISE_PCT (3) CACHETTE_BIN (build/cachette) BASE_REV (none).
#
# Everything is bounded in time, talks only to 127.0.0.1, and every process
# started here is stopped on exit, error, Ctrl-C or SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

BENCH_NAME=bench
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

# The command as given, for the table: the overrides from the environment.
bench_command bench/http/run.sh bench DURATION ROUNDS WARMUP CONNECTIONS KEYS MEM_ENTRIES NOISE_PCT CACHETTE_BIN BASE_REV

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-64}
KEYS=${KEYS:-10000}
MEM_ENTRIES=${MEM_ENTRIES:-1000000}
NOISE_PCT=${NOISE_PCT:-3}
CACHETTE_BIN=${CACHETTE_BIN:-build/cachette}
BASE_REV=${BASE_REV:-}
SERVER_CPU=0
CLIENT_CPU=1

for v in DURATION ROUNDS WARMUP CONNECTIONS KEYS MEM_ENTRIES NOISE_PCT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((DURATION >= 1 && DURATION <= 300)) || die "DURATION must be 1..300 seconds"
((ROUNDS >= 1 && ROUNDS <= 15)) || die "ROUNDS must be 1..15"
((WARMUP <= 60)) || die "WARMUP must be 0..60 seconds"
((KEYS >= 1 && KEYS <= 1000000)) || die "KEYS must be 1..1000000"
((MEM_ENTRIES <= 5000000)) || die "MEM_ENTRIES must be at most 5000000"
for tool in wrk nginx taskset timeout curl cc pgrep getconf; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
bench_files "" bench "server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"

# ---------------------------------------------------------------- cleanup ---

pids=()          # every long-lived process started here
job_pid=""       # the wrk or loader run in progress, if any
cachette_pid=""
nginx_pid=""
base_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in $job_pid "${pids[@]}"; do stop_pid "$pid"; done # before the base build's worktree goes
    [ -z "$BASE_REV" ] || git worktree remove --force "$tmp/base-src" 2>/dev/null || true
    finish_run "$rc" ""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A watchdog bounds the whole run: warm-up, rounds, preload and memory.
budget=$(((ROUNDS * DURATION + WARMUP) * 5 + (ROUNDS + 1) * 5 * 15 + 240))
[ -z "$BASE_REV" ] || budget=$((budget * 2 + 300)) # twice the runs, and a build
start_watchdog "$budget"

# This shell and what it starts run on the client's core, away from the
# server's.
taskset -pc "$CLIENT_CPU" $$ >/dev/null

# ------------------------------------------------------------- servers ---

# start_cachette NAME [BINARY]: sets cachette_pid and cachette_port.
start_cachette() {
    local out="$tmp/cachette.$1.out" i
    taskset -c "$SERVER_CPU" "${2:-$CACHETTE_BIN}" --port 0 --threads 1 --log-level warn \
        >"$out" 2>"$tmp/cachette.$1.err" &
    cachette_pid=$!
    pids+=("$cachette_pid")
    for ((i = 0; i < 100; i++)); do
        cachette_port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out")
        [ -n "$cachette_port" ] && return 0
        kill -0 "$cachette_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$tmp/cachette.$1.err" >&2
    die "cachette did not start"
}

start_nginx() {
    local try port i
    mkdir -p "$tmp/nginx"
    for ((try = 0; try < 10; try++)); do
        port=$((20000 + RANDOM % 40000))
        port_free "$port" || continue
        sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$port|g" "$here/nginx.conf.in" >"$tmp/nginx/nginx.conf"
        taskset -c "$SERVER_CPU" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
            -c "$tmp/nginx/nginx.conf" >"$tmp/nginx/out" 2>&1 &
        nginx_pid=$!
        pids+=("$nginx_pid")
        for ((i = 0; i < 100; i++)); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            if ! port_free "$port" && [ -n "$(pgrep -P "$nginx_pid")" ]; then
                nginx_port=$port
                nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
                return 0
            fi
            sleep 0.05
        done
        stop_pid "$nginx_pid"
    done
    cat "$tmp/nginx/out" "$tmp/nginx/error.log" >&2 2>/dev/null || true
    die "nginx did not start"
}

# ------------------------------------------------------------- one run ---

# run_wrk WORKLOAD SECONDS: one wrk run; sets r_* with its figures.
run_wrk() {
    local w=$1 secs=$2 url args=() port=$cachette_port
    if [[ $w == base-* ]]; then
        w=${w#base-}
        port=$base_port
    fi
    case $w in
    nginx) url="http://127.0.0.1:$nginx_port/cache/user42" ;;
    get1) url="http://127.0.0.1:$port/cache/user42" ;;
    *) url="http://127.0.0.1:$port" ;;
    esac
    case $w in
    getN) args=(-s "$here/workload.lua" "$url" -- get "$KEYS") ;;
    post) args=(-s "$here/workload.lua" "$url" -- post "$KEYS") ;;
    mix) args=(-s "$here/workload.lua" "$url" -- mix "$KEYS" 10) ;;
    binput | binget) args=(-s "$here/workload.lua" "$url" -- "$w" "$KEYS") ;;
    *) args=("$url") ;;
    esac

    # shellcheck disable=SC2034 # filled and read through namerefs
    local -A pa=() pb=()
    snap_procs pa
    local srv_b srv_a cli_b cli_a rc=0
    local -a c0b c1b c0a c1a
    proc_ticks srv_b "$cachette_pid" "$nginx_pid" "$nginx_worker" $base_pid
    children_ticks cli_b
    cpu_busy c0b "$SERVER_CPU"
    cpu_busy c1b "$CLIENT_CPU"
    local t0=$EPOCHREALTIME
    job taskset -c "$CLIENT_CPU" timeout -k 5 $((secs + 30)) \
        wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --timeout 5s --latency "${args[@]}" >"$tmp/wrk.out" 2>&1 || rc=$?
    local t1=$EPOCHREALTIME
    cpu_busy c0a "$SERVER_CPU"
    cpu_busy c1a "$CLIENT_CPU"
    children_ticks cli_a
    proc_ticks srv_a "$cachette_pid" "$nginx_pid" "$nginx_worker" $base_pid
    snap_procs pb
    ((rc == 0)) || { cat "$tmp/wrk.out" >&2; die "wrk failed (exit $rc) on $w"; }

    r_cpu0=$((c0a[0] - c0b[0]))
    r_cpu1=$((c1a[0] - c1b[0]))
    r_steal=$((c0a[1] - c0b[1] + c1a[1] - c1b[1]))
    r_server=$((srv_a - srv_b))
    r_client=$((cli_a - cli_b))
    r_elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    r_loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

    # wrk's figures: requests, req/s, p99 in ms, errors.
    read -r r_requests r_rps r_p99 r_errors < <(awk '
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            p99 = (unit == "us") ? v / 1000 : (unit == "ms") ? v : (unit == "s") ? v * 1000 : (unit == "m") ? v * 60000 : -1
        }
        /^  Non-2xx or 3xx responses:/ { err += $NF }
        /^  Socket errors:/ { for (i = 3; i <= NF; i += 2) { x = $(i + 1); sub(/,/, "", x); err += x } }
        END { printf "%d %.0f %.3f %d\n", req, rps, p99, err }' "$tmp/wrk.out")
    ((r_requests > 0)) || { cat "$tmp/wrk.out" >&2; die "wrk completed no requests on $w"; }

    # CPU time of the server's core per request, and the noise verdict:
    # other = busy ticks of both cores not explained by our processes.
    r_cpu_us=$(awk -v t="$r_cpu0" -v hz="$hz" -v n="$r_requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    r_srv_us=$(awk -v t="$r_server" -v hz="$hz" -v n="$r_requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    r_other=$((r_cpu0 + r_cpu1 - r_server - r_client))
    r_others=$(other_ticks=$r_other top_others pa pb $$ "${pids[@]}" "$nginx_worker")
    r_noisy=$(awk -v o="$r_other" -v st="$r_steal" -v e="$r_elapsed" -v hz="$hz" -v pct="$NOISE_PCT" \
        'BEGIN { lim = e * hz * pct / 100; print (o > lim || st > lim) ? "NOISY" : "ok" }')
}

# -------------------------------------------------------------- the run ---

keys_h=$(thousands "$KEYS")
declare -A labels=(
    [nginx]="nginx: fixed GET /cache/user42"
    [get1]="cachette: GET one key (user42)"
    [getN]="cachette: GET, $keys_h random keys"
    [post]="cachette: POST, $keys_h random keys, 32-byte values"
    [mix]="cachette: 90/10 GET/POST mix, $keys_h keys"
    [binput]="cachette: PUT 1 KiB binary values, $keys_h keys"
    [binget]="cachette: GET ?raw 1 KiB binary values, $keys_h keys"
)
workloads=(nginx get1 getN post mix binput binget)
if [ -n "$BASE_REV" ]; then
    build_base "$BASE_REV" "$tmp/base-src"
    # Each cachette workload, then its twin on the base build, in every round.
    paired=(nginx)
    for w in "${workloads[@]:1}"; do
        paired+=("$w" "base-$w")
        labels[base-$w]="  the same, cachette at $base_commit"
    done
    workloads=("${paired[@]}")
fi

say "building the loader"
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/load" "$here/load.c"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- src include Makefile 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes in src/include/Makefile"
fi
commit="$commit; binary $CACHETTE_BIN built $(date -u -r "$CACHETTE_BIN" '+%Y-%m-%d %H:%M UTC')"
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
machine="$ncpu CPUs (nproc), ${cpu_model:-unknown CPU}, Linux $(uname -r)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# Preflight: how much of the two cores do others use while we do nothing?
preflight_verdict

{
    echo "# cachette HTTP benchmark, raw figures"
    echo "command: $command_line"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $machine"
    echo "commit: $commit"
    echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); nginx: $(nginx -v 2>&1 | cut -d' ' -f3)"
    echo "duration ${DURATION}s, warm-up ${WARMUP}s, rounds $ROUNDS, connections $CONNECTIONS, keys $KEYS, CLK_TCK $hz, noise limit ${NOISE_PCT}% of a core"
    echo "preflight: $quiet_line"
    echo
    echo "# ticks: cpu0/cpu1 = busy ticks of the cores; server = cachette+nginx processes; client = wrk (+ this shell);"
    echo "# other = cpu0 + cpu1 - server - client; steal is part of the busy ticks. cpu_us/r: cpu0 busy per request;"
    echo "# srv_us/r: the server processes' own utime+stime per request (softirq work run in other contexts excluded)"
    printf '%-6s %-5s %9s %10s %9s %9s %9s %7s %6s %6s %6s %6s %6s %5s %6s %-7s %-14s %s\n' \
        round load req/s requests p99_ms cpu_us/r srv_us/r elapsed cpu0 cpu1 server client other steal errors verdict loadavg top_others
} >"$raw"

# preload PORT: user42 and the KEYS keys.
preload() {
    curl -sf --max-time 5 -o /dev/null -X POST "http://127.0.0.1:$1/cache" \
        -H 'Content-Type: application/json' -d '{"key":"user42","value":"Alice"}' || die "preloading user42 failed"
    job taskset -c "$CLIENT_CPU" "$tmp/load" "$1" "$KEYS" >&2 || die "preloading $KEYS keys failed"
    got=$(curl -sf --max-time 5 "http://127.0.0.1:$1/cache/user42") || die "GET user42 failed"
    [ "$got" = '{"key":"user42","value":"Alice"}' ] || die "GET user42 answered $got"
}

if [ -n "$BASE_REV" ]; then
    start_cachette base "$tmp/base-src/build/cachette"
    base_pid=$cachette_pid
    base_port=$cachette_port
    say "cachette at $base_commit on 127.0.0.1:$base_port (pid $base_pid)"
    say "preloading user42 and $KEYS keys into it"
    preload "$base_port"
fi
start_cachette main
start_nginx
say "cachette on 127.0.0.1:$cachette_port (pid $cachette_pid), nginx on 127.0.0.1:$nginx_port (pid $nginx_pid, worker $nginx_worker)"

say "preloading user42 and $KEYS keys"
preload "$cachette_port"
got=$(curl -s --max-time 5 "http://127.0.0.1:$nginx_port/cache/user42") || die "nginx GET failed"
[ "$got" = '{"key":"user42","value":"Alice"}' ] || die "nginx answered $got"

declare -A rps=() p99=() cpu=() noisy=() errs=() vs_base_rps=() vs_base_cpu=()
record() { # record ROUND INDEX
    local round=$1 i=$2 w=${workloads[$2]}
    printf '%-6s %-5s %9s %10s %9s %9s %9s %7s %6s %6s %6s %6s %6s %5s %6s %-7s %-14s %s\n' \
        "$round" "$w" "$r_rps" "$r_requests" "$r_p99" "$r_cpu_us" "$r_srv_us" "$r_elapsed" "$r_cpu0" "$r_cpu1" \
        "$r_server" "$r_client" "$r_other" "$r_steal" "$r_errors" "$r_noisy" "${r_loadavg// /,}" "${r_others:--}" >>"$raw"
}

if ((WARMUP > 0)); then
    say "warm-up: ${WARMUP}s each"
    for i in "${!workloads[@]}"; do
        run_wrk "${workloads[$i]}" "$WARMUP"
        record warmup "$i"
    done
fi

for ((round = 1; round <= ROUNDS; round++)); do
    order=("${!workloads[@]}")
    if [ -n "$BASE_REV" ] && ((round % 2 == 0)); then
        # Even rounds run each base twin first, so neither build always follows the other.
        order=(0)
        for ((i = 1; i < ${#workloads[@]}; i += 2)); do order+=($((i + 1)) "$i"); done
    fi
    declare -A round_rps=() round_cpu=()
    for i in "${order[@]}"; do
        say "round $round/$ROUNDS: ${workloads[$i]} (${DURATION}s)"
        run_wrk "${workloads[$i]}" "$DURATION"
        record "$round" "$i"
        rps[$i]+="$r_rps "
        p99[$i]+="$r_p99 "
        cpu[$i]+="$r_cpu_us "
        round_rps[$i]=$r_rps
        round_cpu[$i]=$r_cpu_us
        [[ $r_noisy == ok ]] || noisy[$i]=$((${noisy[$i]:-0} + 1))
        ((r_errors == 0)) || errs[$i]=$((${errs[$i]:-0} + 1))
        say "  $r_rps req/s, p99 ${r_p99} ms, ${r_cpu_us} CPU-us/req, $r_noisy${r_others:+ (others: $r_others)}"
    done
    if [ -n "$BASE_REV" ]; then # this round's ratio of each current build to its base twin
        for ((i = 1; i < ${#workloads[@]}; i += 2)); do
            vs_base_rps[$i]+="$(awk -v a="${round_rps[$i]}" -v b="${round_rps[$((i + 1))]}" 'BEGIN { printf "%.4f", a / b }') "
            vs_base_cpu[$i]+="$(awk -v a="${round_cpu[$i]}" -v b="${round_cpu[$((i + 1))]}" 'BEGIN { printf "%.4f", a / b }') "
        done
    fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

stop_pid "$nginx_pid"
stop_pid "$cachette_pid"
[ -z "$base_pid" ] || stop_pid "$base_pid"
base_pid=""

# ---------------------------------------------------------- memory figure ---

mem_line=""
if ((MEM_ENTRIES > 0)); then
    say "memory: a fresh cachette, loading $MEM_ENTRIES entries"
    start_cachette mem
    rss_empty=$(awk '/^VmRSS:/ { print $2 }' "/proc/$cachette_pid/status")
    job taskset -c "$CLIENT_CPU" "$tmp/load" "$cachette_port" "$MEM_ENTRIES" >"$tmp/load.out" || die "loading failed"
    load_out=$(cat "$tmp/load.out")
    say "  $load_out"
    stats=$(curl -sf --max-time 5 "http://127.0.0.1:$cachette_port/stats") || die "GET /stats failed"
    rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$cachette_pid/status")
    entries=$(sed -n 's/.*"entries":\([0-9]*\).*/\1/p' <<<"$stats")
    bytes_used=$(sed -n 's/.*"bytes_used":\([0-9]*\).*/\1/p' <<<"$stats")
    evicted=$(sed -n 's/.*"evicted":\([0-9]*\).*/\1/p' <<<"$stats")
    [ "$entries" = "$MEM_ENTRIES" ] || say "  WARNING: /stats reports $entries entries, expected $MEM_ENTRIES (evicted $evicted)"
    stop_pid "$cachette_pid"
    mem_line=$(awk -v n="$MEM_ENTRIES" -v rss="$rss_kb" -v empty="$rss_empty" -v used="$bytes_used" \
        -v entries="$entries" -v load="$load_out" '
        function thousands(x,   s, out) {
            s = sprintf("%d", x); out = ""
            while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
            return s out
        }
        BEGIN {
        split(load, f, " ")
        printf "| %s (%s in /stats) | %.1f MiB (%.1f MB) | %.1f MiB (%.1f MB) | %.1f | %.1f | %.1f | %s s |\n",
            thousands(n), thousands(entries), rss / 1024, rss * 1024 / 1e6, used / 1048576, used / 1e6,
            rss * 1024 / n, (rss - empty) * 1024 / n, used / n, f[4] }')
    {
        echo
        echo "memory: entries $MEM_ENTRIES (/stats: $entries, evicted $evicted), VmRSS empty ${rss_empty} kB, loaded ${rss_kb} kB, bytes_used $bytes_used"
        echo "memory: $load_out"
        echo "memory: /stats $stats"
    } >>"$raw"
fi

# ----------------------------------------------------------------- table ---

# target_check INDEX RPS_RATIO CPU_RATIO P99: issue 2's targets for the row.
target_check() {
    local i=$1
    case ${workloads[$i]} in
    base-*) echo "baseline" ;;
    get1 | getN) awk -v r="$2" -v c="$3" -v p="$4" 'BEGIN { ok = r >= 0.9 && c <= 1.15 && p <= 2
        printf "≥0.90x, ≤1.15x CPU, p99 ≤2 ms: %s", ok ? "met" : "missed" }' ;;
    post) awk -v r="$2" -v c="$3" -v p="$4" 'BEGIN { ok = r >= 0.75 && c <= 1.35 && p <= 2
        printf "≥0.75x, ≤1.35x CPU, p99 ≤2 ms: %s", ok ? "met" : "missed" }' ;;
    mix) awk -v p="$4" 'BEGIN { printf "p99 ≤2 ms: %s", p <= 2 ? "met" : "missed" }' ;;
    binput | binget) echo "issue 3 workload" ;;
    *) echo "reference" ;;
    esac
}

{
    echo "### HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Machine: $machine"
    echo "- Commit: $commit"
    echo "- Setup: server on CPU $SERVER_CPU (cachette \`--threads 1\`; nginx $(nginx -v 2>&1 | cut -d/ -f2), 1 worker, access_log off),"
    echo "  \`wrk -t1 -c$CONNECTIONS --latency\` on CPU $CLIENT_CPU; $ROUNDS interleaved round(s) of ${DURATION} s each after a ${WARMUP} s warm-up; medians."
    echo "  CPU µs/req: busy ticks of CPU $SERVER_CPU (/proc/stat) per request. Ratios: against nginx in this run."
    echo "- Load average: $load_start at start, $load_end after the rounds. Preflight: $quiet_line."
    [ -z "$BASE_REV" ] || echo "- Base: cachette at $base_commit (BASE_REV), built by its own Makefile; each cachette workload runs against it beside the current build in every round (the base first in even rounds)."
    echo
    echo "| Workload | req/s | p99 | CPU µs/req | req/s vs nginx | CPU µs vs nginx | Target (issue 2) | Noise |"
    echo "|---|---:|---:|---:|---:|---:|---|---|"
    base_rps=$(median <<<"${rps[0]}")
    base_cpu=$(median <<<"${cpu[0]}")
    for i in "${!workloads[@]}"; do
        m_rps=$(median <<<"${rps[$i]}")
        m_p99=$(median <<<"${p99[$i]}")
        m_cpu=$(median <<<"${cpu[$i]}")
        rr=$(awk -v a="$m_rps" -v b="$base_rps" 'BEGIN { printf "%.2f", a / b }')
        cr=$(awk -v a="$m_cpu" -v b="$base_cpu" 'BEGIN { printf "%.2f", a / b }')
        n=${noisy[$i]:-0}
        note="clean"
        ((n == 0)) || note="NOISY ($n of $ROUNDS runs)"
        ((${errs[$i]:-0} == 0)) || note+=", HTTP/socket ERRORS in ${errs[$i]} runs"
        [ -z "${vs_base_rps[$i]:-}" ] || note+="; vs $base_commit: $(median <<<"${vs_base_rps[$i]}")x req/s, $(median <<<"${vs_base_cpu[$i]}")x CPU µs/req (median of per-round ratios)"
        awk -v l="${labels[${workloads[$i]}]}" -v r="$m_rps" -v p="$m_p99" -v c="$m_cpu" -v rr="$rr" -v cr="$cr" \
            -v t="$(target_check "$i" "$rr" "$cr" "$m_p99")" -v note="$note" 'BEGIN {
            s = sprintf("%d", r); out = ""
            while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
            printf "| %s | %s | %.2f ms | %.2f | %.2fx | %.2fx | %s | %s |\n", l, s out, p, c, rr, cr, t, note }'
    done
    if [ -n "$mem_line" ]; then
        echo
        echo "| Entries (16-byte keys, 32-byte values) | VmRSS | bytes_used (/stats) | RSS B/entry | RSS B/entry over empty | bytes_used B/entry | Load time |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        echo "$mem_line"
    fi
    echo
    echo "Raw per-run figures: \`$raw\`."
} >"$tmp/table.md"

{ echo; cat "$tmp/table.md"; } >>"$raw"
cat "$tmp/table.md"
