#!/usr/bin/env bash
# The balancer's cost, in one run (`make bench-cluster`, issue 15): the CPU
# time a request takes on a cachette node reached directly, and on the node
# and the balancer when it goes through HAProxy 2.6 or nginx 1.22, each run
# from the configuration shipped in deploy/ exactly as scripts/cluster.sh
# renders it (its `config` subcommand: the listening port and the node list
# rewritten, nothing else).
#
# Placement: the node (cachette --threads 1) on CPU 0, the balancer on CPU 1
# (HAProxy takes its thread count from the CPUs it may use, so taskset makes
# it one thread, checked below; nginx renders with worker_processes 1, its
# master and worker both on CPU 1). The load generator, wrk -t2 with
# bench/peers/workload.lua spreading requests uniformly over KEYS (10,000)
# keys, is not pinned: on two cores it takes what the node and the balancer
# leave. So wall-clock throughput says little here, and the figure is CPU
# time per request: utime+stime of each process from /proc/PID/stat (all
# its threads; nginx's master and workers summed) over the measured run,
# divided by the requests wrk completed. Another process on the machine
# slows a run down; it changes that figure much less.
#
# Each balancer's configuration lists the one node RING (3) times, as three
# servers at the same address, so that it does the work of a three-node
# configuration while every request lands on the one node measured: HAProxy
# places a server's points on its ring by the server's id, so its ring is
# that of three nodes, and it health-checks three servers; nginx places them
# by the address, so the three share one server's 1,600 points (its ring
# lookup is one binary-search step shorter than for three nodes), and it
# compares the three servers' addresses on every pick.
#
# Workloads, CONNS (64) keep-alive connections, every key preloaded on the
# node (the 16-byte "key:%012d", the 32-byte value "v%031d"):
#   get   GET /cache/<key> (all hits): direct, HAProxy, nginx
#   put   PUT /cache/<key> {"value":"<the same 32 bytes>"}: direct, HAProxy, nginx
#   post  the seed's POST /cache {"key":…,"value":…}: direct, HAProxy (whose
#         Lua converter, deploy/haproxy/cachette.lua, reads the key from the
#         body); nginx cannot route it and answers 501, so it has no row.
#         HAProxy's POST beside its PUT is the Lua converter's cost: a
#         few µs at most, under what the load of others moves a 5-second
#         run, so after the rounds LUA_PAIRS (10) pairs of 1-second runs,
#         PUT and POST through HAProxy back to back (in turn first), give
#         it as the median of the pairs' differences.
#
# A warm-up pass of WARMUP (1) seconds per row, discarded, then ROUNDS (5)
# rounds of every row, DURATION (5) seconds each, each round in another
# order. Medians; ratios are medians of per-round ratios
# (each proxied run against the direct run of its own round). The node's
# /stats before and after each run give the connections it accepted (are
# the balancer's connections to it kept alive?) and the requests it served.
# A run where processes not ours took more than NOISE_PCT of a core is
# flagged NOISY: CPU time per request moves much less than throughput when
# others load the machine, but it moves (fewer requests per wake-up, caches
# shared), so compare rows of one run, and prefer a quiet machine.
#
# Output: a Markdown summary on stdout, progress on stderr, every per-run
# figure in bench/results/cluster-<timestamp>.txt.
#
# Environment: ROUNDS (5) DURATION (5) WARMUP (1) KEYS (10000) CONNS (64)
# RING (3) LUA_PAIRS (10) NOISE_PCT (5) CACHETTE_BIN (build/cachette).
#
# Everything is bounded in time (a watchdog stops the run past its budget),
# talks only to 127.0.0.1 on free ports, and every process and file started
# or written here is stopped or removed on exit, error, Ctrl-C or SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
BENCH_NAME=bench-cluster
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
export LC_ALL=C # awk with a decimal point

bench_params bench/cluster/run.sh bench-cluster "ROUNDS 5 1 15" "DURATION 5 1 120 seconds" "WARMUP 1 0 30 seconds" \
    "KEYS 10000 1 1000000" "CONNS 64 2 1000" "RING 3 1 16" "LUA_PAIRS 10 0 100" "NOISE_PCT 5 0 200" "CACHETTE_BIN build/cachette"
NODE_CPU=0
PROXY_CPU=1
# preflight's names for the two cores it watches.
SERVER_CPU=$NODE_CPU CLIENT_CPU=$PROXY_CPU

for tool in wrk haproxy nginx taskset curl cc awk pgrep lscpu getconf; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
bench_files "cluster-" cluster "the node on CPU $NODE_CPU, the balancer on CPU $PROXY_CPU"

# ---------------------------------------------------------------- cleanup ---

pids=()    # every long-lived process started here
job_pid="" # the load generator in progress, if any

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # shellcheck disable=SC2086 # the pids are words, or none
    finish_run "$rc" "*.log *.out" $job_pid "${pids[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

workloads=(get put post)
declare -A paths_of=([get]="direct haproxy nginx" [put]="direct haproxy nginx" [post]="direct haproxy")
declare -A wl_label=(
    [get]="GET /cache/{key}"
    [put]="PUT /cache/{key} {\"value\"}"
    [post]="POST /cache {\"key\",\"value\"}"
)
# The runs of a round, WORKLOAD:PATH. HAProxy's PUT and POST stand side by
# side, so that the Lua converter's cost, their difference, comes from runs
# seconds apart, under the same load from others.
run_list=(get:direct get:haproxy get:nginx put:direct put:nginx put:haproxy post:haproxy post:direct)
rows=${#run_list[@]}
estimate=$((rows * (WARMUP + 1) + ROUNDS * rows * (DURATION + 1) + LUA_PAIRS * 4 + 20))
budget=$((estimate * 2 + 120))
say "$rows rows, $ROUNDS round(s) of ${DURATION}s: about $(((estimate + 59) / 60)) minutes (stopped past $((budget / 60)))"
start_watchdog "$budget"

# --------------------------------------------------------------- machine ---

cp -p "$CACHETTE_BIN" "$tmp/cachette" # a rebuild during the run changes nothing halfway
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/load" "$root/bench/http/load.c"
# nginx's workers run as nobody when nginx starts as root: they may pass
# through the scratch directory to the temporary files under it.
chmod 711 "$tmp"

cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core:[[:space:]]*//p' | head -1)
machine="$ncpu CPUs (${threads_per_core:-?} thread(s) per core), ${cpu_model:-unknown CPU}, Linux $(uname -r)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include deploy scripts/cluster.sh 2>/dev/null ||
    commit+=" (with uncommitted changes under src/, include/ or deploy/)"
versions="$(haproxy -v | head -1 | sed 's/ - https.*//'); $(nginx -v 2>&1 | sed 's/^nginx version: //'); $({ wrk -v 2>&1 || true; } | head -1 | cut -d' ' -f1-2)"
bench_raw_header bench/cluster/run.sh
say "$machine"
say "$versions"

# --------------------------------------------------------------- servers ---

# ready URL: true once URL answers 2xx.
ready() { curl -fs -o /dev/null --max-time 1 "$1"; }

node_pid="" node_port=""
start_node() {
    taskset -c "$NODE_CPU" "$tmp/cachette" --port 0 --threads 1 --log-level warn --max-memory 256mb \
        >"$tmp/node.out" 2>"$tmp/node.log" &
    node_pid=$!
    pids+=("$node_pid")
    wait_banner "$tmp/node.out" "$node_pid" '.*listening on http://127\.0\.0\.1:\([0-9]*\).*' node_port ||
        { cat "$tmp/node.log" >&2; die "the node did not start"; }
}

# start_proxy NAME: renders deploy/'s configuration for NAME (haproxy or
# nginx) on a free port in front of the node, listed RING times; starts it
# on PROXY_CPU and waits until a preloaded key comes back through it. Sets
# proxy_port[NAME], proxy_pids[NAME] (nginx: the master, then its workers)
# and proxy_note[NAME] (its threads or processes).
declare -A proxy_port=() proxy_pids=() proxy_note=()
start_proxy() {
    local name=$1 dir="$tmp/$1" try port conf pid i n workers
    local -a servers=()
    for ((i = 0; i < RING; i++)); do servers+=("$node_port"); done
    mkdir -p "$dir"
    for ((try = 0; try < 5; try++)); do
        pick_port port
        conf=$(scripts/cluster.sh config "$name" "$port" "$dir" "${servers[@]}")
        if [ "$name" = haproxy ]; then
            taskset -c "$PROXY_CPU" haproxy -f "$conf" >"$tmp/$name.log" 2>&1 &
        else
            taskset -c "$PROXY_CPU" nginx -c "$conf" -e stderr >"$tmp/$name.log" 2>&1 &
        fi
        pid=$!
        pids+=("$pid")
        # Alive after answering: not another server that took the port first.
        if wait_until 10 ready "http://127.0.0.1:$port/cache/key:000000000000" && kill -0 "$pid" 2>/dev/null; then
            proxy_port[$name]=$port
            if [ "$name" = haproxy ]; then
                n=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$pid/status")
                proxy_pids[$name]=$pid
                proxy_note[$name]="haproxy: $n thread(s) (nbthread left to the CPUs taskset allows)"
                ((n == 1)) || say "WARNING: HAProxy runs $n threads on CPU $PROXY_CPU, not 1"
            else
                workers=$(pgrep -P "$pid" | paste -sd' ')
                n=$(wc -w <<<"$workers")
                proxy_pids[$name]="$pid $workers"
                proxy_note[$name]="nginx: master + $n worker(s)"
                ((n == 1)) || say "WARNING: nginx runs $n workers, not 1"
            fi
            return 0
        fi
        stop_pid "$pid"
    done
    cat "$tmp/$name.log" >&2
    die "$name did not start"
}

say "starting the node on CPU $NODE_CPU and loading $(thousands "$KEYS") keys"
start_node
taskset -c "$PROXY_CPU" "$tmp/load" "$node_port" "$KEYS" >"$tmp/load.out" 2>&1 ||
    { cat "$tmp/load.out" >&2; die "loading the node failed"; }
start_proxy haproxy
start_proxy nginx
proxy_pids[direct]=""
say "${proxy_note[haproxy]}; ${proxy_note[nginx]}; node on port $node_port, HAProxy ${proxy_port[haproxy]}, nginx ${proxy_port[nginx]}"
{
    echo "node: 127.0.0.1:$node_port, pid $node_pid; balancers list it $RING times"
    echo "${proxy_note[haproxy]}, port ${proxy_port[haproxy]}, pid ${proxy_pids[haproxy]}"
    echo "${proxy_note[nginx]}, port ${proxy_port[nginx]}, pids ${proxy_pids[nginx]}"
} >>"$raw"

# Preflight: how much of the two cores do others use while we do nothing?
preflight
quiet_line="others used ${quiet_pct}% of a core over 1 s before the run (top: ${quiet_top:-none})"
say "preflight: $quiet_line"
echo "preflight: $quiet_line" >>"$raw"

# ----------------------------------------------------------- measurement ---

# node_stat VAR: VAR=(requests connections_total) from the node's /stats.
node_stat() {
    local -n _s=$1
    local body
    body=$(curl -fs --max-time 2 "http://127.0.0.1:$node_port/stats") || die "the node's /stats did not answer"
    _s=("$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$body")"
        "$(sed -n 's/.*"connections_total":\([0-9]*\).*/\1/p' <<<"$body")")
}

# run_one WORKLOAD PATH SECONDS: one wrk run; sets r_req, r_rps, r_err,
# r_node_us, r_proxy_us, r_wrk_us, r_conns (connections the node accepted),
# r_extra (requests the node served beyond those wrk completed: those in
# flight when wrk stopped, health checks, /stats),
# r_busy0/1, r_other (% of a core taken by others), r_noisy, r_others.
run_one() {
    local w=$1 via=$2 secs=$3 port style mode rc=0 pid n0 n1 p0 p1 o0 o1 c0 c1 b0 b1 a0 a1 t0 t1
    local -a s0 s1
    # shellcheck disable=SC2034 # read through namerefs
    local -A pa=() pb=()
    case $via in
    direct) port=$node_port ;;
    *) port=${proxy_port[$via]} ;;
    esac
    case $w in
    get) style=json mode=get ;;
    put) style=jsonput mode=set ;;
    post) style=json mode=set ;;
    esac
    node_stat s0
    snap_procs pa
    # shellcheck disable=SC2086 # pid lists are words
    {
        cpu_busy b0 "$NODE_CPU"
        cpu_busy b1 "$PROXY_CPU"
        children_ticks c0
        proc_ticks n0 "$node_pid"
        proc_ticks p0 ${proxy_pids[$via]}
        proc_ticks o0 "$node_pid" ${proxy_pids[haproxy]} ${proxy_pids[nginx]}
        t0=$EPOCHREALTIME
        job_to "$tmp/wrk.out" wrk -t2 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$root/bench/peers/workload.lua" \
            "http://127.0.0.1:$port" -- "$style" "$mode" uniform "$KEYS" || rc=$?
        t1=$EPOCHREALTIME
        proc_ticks n1 "$node_pid"
        proc_ticks p1 ${proxy_pids[$via]}
        proc_ticks o1 "$node_pid" ${proxy_pids[haproxy]} ${proxy_pids[nginx]}
        children_ticks c1
        cpu_busy a0 "$NODE_CPU"
        cpu_busy a1 "$PROXY_CPU"
    }
    snap_procs pb
    node_stat s1
    if ((rc != 0)); then
        cat "$tmp/wrk.out" >&2
        # A process that is gone was stopped from outside (its log, if any,
        # ends $raw): say which.
        for pid in "node:$node_pid" haproxy:${proxy_pids[haproxy]} nginx:${proxy_pids[nginx]// / nginx:}; do
            kill -0 "${pid#*:}" 2>/dev/null || say "${pid%:*} (pid ${pid#*:}) exited during the run"
        done
        die "wrk failed ($w through $via)"
    fi
    read -r r_req r_rps r_err < <(awk '
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^  Non-2xx or 3xx responses:/ { err += $NF }
        /^  Socket errors:/ { for (i = 3; i <= NF; i += 2) { x = $(i + 1); sub(/,/, "", x); err += x } }
        END { printf "%d %.0f %d\n", req, rps, err }' "$tmp/wrk.out")
    ((r_req > 0)) || { cat "$tmp/wrk.out" >&2; die "wrk completed no request ($w through $via)"; }
    r_conns=$((s1[1] - s0[1]))
    r_extra=$((s1[0] - s0[0] - r_req))
    read -r r_node_us r_proxy_us r_wrk_us r_busy0 r_busy1 r_other < <(awk -v hz="$hz" -v req="$r_req" \
        -v n="$((n1 - n0))" -v p="$((p1 - p0))" -v c="$((c1 - c0))" -v ours="$((o1 - o0 + c1 - c0))" \
        -v b0="$((a0[0] - b0[0]))" -v b1="$((a1[0] - b1[0]))" -v t="$t1" -v s="$t0" 'BEGIN {
            us = 1e6 / hz / req; ticks = (t - s) * hz; other = b0 + b1 - ours; if (other < 0) other = 0
            printf "%.3f %.3f %.3f %.0f %.0f %.1f\n", n * us, p * us, c * us, 100 * b0 / ticks, 100 * b1 / ticks, 100 * other / ticks }')
    [ "$via" != direct ] || r_proxy_us=0
    r_noisy=ok
    if awk -v o="$r_other" -v n="$NOISE_PCT" 'BEGIN { exit !(o > n) }'; then r_noisy=NOISY; fi
    # shellcheck disable=SC2086 # pid lists are words
    r_others=$(top_others pa pb $$ "${pids[@]}" ${proxy_pids[nginx]})
}

med() { median <<<"$1"; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
per_core_s() { thousands "$(awk -v us="$1" 'BEGIN { printf "%.0f", 1e6 / us }')"; }

record() { # record PART ROUND WORKLOAD PATH
    printf '%s: round %s %s %s requests %s rps %s errors %s node_us %s proxy_us %s wrk_us %s node_conns_new %s node_extra_requests %s cpu0 %s%% cpu1 %s%% other %s%% %s others: %s\n' \
        "$1" "$2" "$3" "$4" "$r_req" "$r_rps" "$r_err" "$r_node_us" "$r_proxy_us" "$r_wrk_us" "$r_conns" "$r_extra" \
        "$r_busy0" "$r_busy1" "$r_other" "$r_noisy" "${r_others:--}" >>"$raw"
}

if ((WARMUP > 0)); then
    say "warm-up: ${WARMUP}s per row, discarded"
    for r in "${run_list[@]}"; do
        run_one "${r%:*}" "${r#*:}" "$WARMUP"
        record warmup 0 "${r%:*}" "${r#*:}"
    done
fi

# Per row w:t, the rounds' figures, space-separated; per run w:t:round, the
# node's and the balancer's µs, for the per-round ratios.
declare -A m_rps=() m_node=() m_proxy=() m_total=() m_conns=() m_noisy=() m_errs=() run_node=() run_proxy=()
for ((round = 1; round <= ROUNDS; round++)); do
    # Every round in another order: the list backwards every other round,
    # then started 3 places further on each round.
    order=("${run_list[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = rows - 1; i >= 0; i--)); do order+=("${run_list[i]}"); done
    fi
    k=$(((round - 1) * 3 % rows))
    order=("${order[@]:k}" "${order[@]:0:k}")
    for r in "${order[@]}"; do
        w=${r%:*} via=${r#*:}
        run_one "$w" "$via" "$DURATION"
        record run "$round" "$w" "$via"
        m_rps[$w:$via]+="$r_rps "
        m_node[$w:$via]+="$r_node_us "
        m_proxy[$w:$via]+="$r_proxy_us "
        m_total[$w:$via]+="$(awk -v n="$r_node_us" -v p="$r_proxy_us" 'BEGIN { printf "%.3f", n + p }') "
        m_conns[$w:$via]+="$r_conns "
        run_node[$w:$via:$round]=$r_node_us
        run_proxy[$w:$via:$round]=$r_proxy_us
        [ "$r_noisy" = ok ] || m_noisy[$w:$via]=$((${m_noisy[$w:$via]:-0} + 1))
        ((r_err == 0)) || m_errs[$w:$via]=$((${m_errs[$w:$via]:-0} + 1))
        say "   round $round/$ROUNDS: $w via $via: node ${r_node_us} µs, balancer ${r_proxy_us} µs per request," \
            "$(thousands "$r_rps") req/s, $r_conns new node connections, $r_noisy"
    done
done

# The Lua converter: PUT and POST through HAProxy in 1-second runs back to
# back, the balancer's µs of POST less PUT's for each pair.
pair_diffs="" pair_diffs_node=""
((LUA_PAIRS == 0)) || say "the Lua converter: $LUA_PAIRS pairs of 1 s runs, PUT and POST through HAProxy"
for ((pair = 1; pair <= LUA_PAIRS; pair++)); do
    order=(put post)
    ((pair % 2)) || order=(post put)
    declare -A got=()
    for w in "${order[@]}"; do
        run_one "$w" haproxy 1
        record lua-pair "$pair" "$w" haproxy
        got[$w]="$r_proxy_us $r_node_us"
    done
    read -r put_p put_n <<<"${got[put]}"
    read -r post_p post_n <<<"${got[post]}"
    pair_diffs+="$(awk -v a="$post_p" -v b="$put_p" 'BEGIN { printf "%.2f", a - b }') "
    pair_diffs_node+="$(awk -v a="$post_n" -v b="$put_n" 'BEGIN { printf "%.2f", a - b }') "
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw"

# ----------------------------------------------------------------- table ---

# Per-round ratios and differences, against the direct run of the same round.
declare -A ratio_total=() ratio_node=()
lua_proxy="" lua_node=""
for ((round = 1; round <= ROUNDS; round++)); do
    for w in "${workloads[@]}"; do
        d=${run_node[$w:direct:$round]}
        for via in ${paths_of[$w]}; do
            ratio_total[$w:$via]+="$(awk -v n="${run_node[$w:$via:$round]}" -v p="${run_proxy[$w:$via:$round]}" -v d="$d" \
                'BEGIN { printf "%.3f", (n + p) / d }') "
            ratio_node[$w:$via]+="$(awk -v n="${run_node[$w:$via:$round]}" -v d="$d" 'BEGIN { printf "%.3f", n / d }') "
        done
    done
    lua_proxy+="$(awk -v a="${run_proxy[post:haproxy:$round]}" -v b="${run_proxy[put:haproxy:$round]}" 'BEGIN { printf "%.3f", a - b }') "
    lua_node+="$(awk -v a="${run_node[post:direct:$round]}" -v b="${run_node[put:direct:$round]}" 'BEGIN { printf "%.3f", a - b }') "
done

display() {
    case $1 in
    direct) echo "direct to the node" ;;
    haproxy) echo "through HAProxy" ;;
    nginx) echo "through nginx" ;;
    esac
}

{
    echo "### The balancer's cost, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Machine: $machine"
    echo "- Commit: $commit; $versions"
    echo "- Setup: the node (\`cachette --threads 1\`) on CPU $NODE_CPU, the balancer on CPU $PROXY_CPU (${proxy_note[haproxy]};"
    echo "  ${proxy_note[nginx]}), each from deploy/'s configuration as \`scripts/cluster.sh config\` renders it, the node"
    echo "  listed $RING times (a ring of $RING servers, one process). \`wrk -t2 -c$CONNS\` (keep-alive), not pinned, over"
    echo "  $(thousands "$KEYS") preloaded keys (16-byte keys, 32-byte values). $ROUNDS rounds of ${DURATION} s after a ${WARMUP} s warm-up; medians."
    echo "  µs/req: utime+stime of the process (/proc/PID/stat, all threads; nginx master + worker) over the run,"
    echo "  divided by the requests wrk completed. Load average $(sed -n "s/^load average at start: //p" "$raw") at start,"
    echo "  $(sed -n "s/^load average at end: //p" "$raw") at the end."
    echo "  Preflight: $quiet_line."
    echo
    echo "| Workload | Path | req/s (wall, shared cores) | node µs/req | balancer µs/req | node + balancer | ÷ direct | node ÷ direct | req per core-second | new node connections per run | Noise |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for w in "${workloads[@]}"; do
        first=1
        for via in ${paths_of[$w]}; do
            r=$w:$via
            label=""
            ((first)) && label=${wl_label[$w]}
            first=0
            node=$(med "${m_node[$r]}") proxy=$(med "${m_proxy[$r]}")
            note="clean"
            ((${m_noisy[$r]:-0} == 0)) || note="NOISY (${m_noisy[$r]} of $ROUNDS)"
            ((${m_errs[$r]:-0} == 0)) || note+=", ERRORS in ${m_errs[$r]} runs"
            if [ "$via" = direct ]; then
                printf '| %s | %s | %s | %s | — | %s | 1.00x | 1.00x | %s (node) | %s | %s |\n' "$label" "$(display "$via")" \
                    "$(thousands "$(med "${m_rps[$r]}")")" "$(f2 "$node")" "$(f2 "$node")" "$(per_core_s "$node")" \
                    "$(med "${m_conns[$r]}")" "$note"
            else
                printf '| %s | %s | %s | %s | %s | %s | %sx | %sx | %s (balancer) | %s | %s |\n' "$label" "$(display "$via")" \
                    "$(thousands "$(med "${m_rps[$r]}")")" "$(f2 "$node")" "$(f2 "$proxy")" \
                    "$(f2 "$(med "${m_total[$r]}")")" "$(f2 "$(med "${ratio_total[$r]}")")" \
                    "$(f2 "$(med "${ratio_node[$r]}")")" "$(per_core_s "$proxy")" "$(med "${m_conns[$r]}")" "$note"
            fi
        done
    done
    echo
    echo "Capacity inputs (1e6 / median µs per request):"
    echo
    for w in get put post; do
        line="- ${wl_label[$w]}: the node $(per_core_s "$(med "${m_node[$w:direct]}")") req per core-second"
        for via in haproxy nginx; do
            [ -n "${m_proxy[$w:$via]:-}" ] || continue
            p=$(med "${m_proxy[$w:$via]}")
            line+=", $via $(per_core_s "$p") ($(f2 "$(awk -v p="$p" -v n="$(med "${m_node[$w:direct]}")" 'BEGIN { print p / n }')") balancer cores per node core)"
        done
        echo "$line"
    done
    echo
    lp=$(med "$lua_proxy") ln=$(med "$lua_node")
    echo "HAProxy's POST /cache (its Lua converter reads the body's key) over its PUT /cache/{key}, the balancer's µs per"
    echo "request: $(f2 "$lp") in the rounds' medians (per round: ${lua_proxy% })"
    if ((LUA_PAIRS > 0)); then
        echo "and $(f2 "$(med "$pair_diffs")") in the median of $LUA_PAIRS pairs of 1 s runs back to back (per pair: ${pair_diffs% });"
        echo "the node's µs, POST over PUT through HAProxy, in the same pairs: $(f2 "$(med "$pair_diffs_node")")."
    else
        echo "(LUA_PAIRS=0: no paired runs)."
    fi
    echo "Direct, the node's POST costs $(f2 "$ln") µs more than its PUT (median of per-round differences)."
    echo "New node connections: those the node accepted during a run (/stats connections_total): in every row HAProxy's"
    echo "health checks (a connection per check, $RING a second) and /stats; direct, wrk's $CONNS too. Through a balancer,"
    echo "the checks and about $CONNS more mean it kept its connections to the node alive; one per request, that it did not."
    echo
    echo "Raw per-run figures: \`$raw\`."
} >"$tmp/table.md"

{ echo; cat "$tmp/table.md"; } >>"$raw"
cat "$tmp/table.md"
