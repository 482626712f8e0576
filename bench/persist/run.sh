#!/usr/bin/env bash
# cachette's persistence beside Redis 7, in one run (`make bench-persist`, issue 14).
#
# Every server runs on CPU 0 (cachette --threads 1; redis-server, whose
# BGSAVE child inherits the core; Pogocache --threads 1), the load generator
# and probes on CPU 1: bench/persist/kvload.c, built here with cc, which
# speaks both cachette's HTTP and the Redis protocol, so both servers are
# driven by the same code. Data directories live in one temporary directory
# (TMPDIR, default /tmp): the same filesystem for every server; its type is
# in the machine line. Redis runs with `save ""` (and no AOF) except where a
# part says otherwise; SAVE and BGSAVE are sent explicitly.
#
# The data: ENTRIES (1,000,000) entries, key i the 16-byte "key:%012u", its
# value 100 random bytes (splitmix64 seeded with i): for cachette a PUT
# /cache/KEY with Content-Type application/octet-stream (binary, stored as
# bytes), for Redis the same bytes by `redis-cli --pipe` from generated RESP.
# Random bytes do not compress, so no file format is flattered.
#
#   1. Snapshot and load. cachette: POST /snapshot's "milliseconds" (and the
#      client's wall time of the request) and "bytes"; Redis: SAVE's wall
#      time at the client and dump.rdb's size. Then each server is stopped
#      and started again ROUNDS times on its files: the load time is from
#      the exec (bash's $EPOCHREALTIME just before `taskset ... &`) to the
#      first GET /health 200 (cachette) or to PING answering and INFO
#      persistence showing loading:0 (Redis), polled every millisecond. The
#      files are in the page cache: a restart, not a cold boot. With
#      POGOCACHE=/path/to/pogocache, Pogocache --persist FILE is filled the
#      same way (RESP) and stopped and started ROUNDS times: its save time is
#      SIGTERM to exit (it polls for the signal every 100 ms, so up to 0.1 s
#      of that is its poll), its load time exec to PING answering.
#   2. Throughput while snapshots run: 64 connections, one request in
#      flight on each, 90% GET / 10% SET over the ENTRIES keys, DURATION
#      seconds; for each server one run with no snapshot and one with
#      snapshots back to back for the whole run (cachette: POST /snapshot in
#      a loop; Redis: BGSAVE, waiting for each to end, in a loop). req/s and
#      p99 at the client.
#   3. SET throughput under each log setting: a fresh server on an empty
#      data directory for every run, 64 connections of SETs of 100 random
#      bytes over SET_KEYS (100,000) keys, DURATION seconds. cachette
#      --append-log off|no|everysec|always (--snapshot-interval 0); Redis
#      without AOF, and with appendonly yes and appendfsync no|everysec|always
#      (auto-aof-rewrite-percentage 0, as cachette takes no snapshot during
#      the run either). Each setting is reported as a ratio to its own
#      server's baseline (off / no AOF).
#
# ROUNDS (3) rounds of each measurement, interleaved (the servers alternate
# which goes first); medians, and for throughput the median of the
# per-round ratios (each pair measured back to back). Each throughput run
# compares the busy ticks of both CPUs (/proc/stat) with the CPU time of
# the benchmark's own processes: a run where others took more than
# NOISE_PCT percent of a core is flagged NOISY.
#
# Goals (issue 14): cachette's snapshot at most half of Redis's SAVE time;
# its load at most half of Pogocache's (measured when POGOCACHE is given;
# otherwise shown against Redis's load and the 0.70 s Pogocache took on
# another machine); with snapshots running ≥ 0.8x the req/s and ≤ 2x the
# p99; everysec ≥ 0.9x and always ≥ 0.5x of off, each better than Redis's
# ratio for the same setting.
#
# Output: a Markdown summary on stdout, progress on stderr, every per-run
# figure in bench/results/persist-<timestamp>.txt.
#
# Environment: ENTRIES (1000000) ROUNDS (3) DURATION (10) SET_KEYS (100000)
# NOISE_PCT (5) QUIET_WAIT (0: seconds to wait, at most, for a second in
# which others take at most NOISE_PCT of a core before starting)
# CACHETTE_BIN (build/cachette) POGOCACHE (unset).
#
# Everything is bounded in time (a watchdog stops the run past its budget),
# talks only to 127.0.0.1, and every process and file started or written here
# is stopped or removed on exit, error, Ctrl-C or SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
BENCH_NAME=bench-persist
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
export LC_ALL=C # $EPOCHREALTIME and awk with a decimal point

bench_command bench/persist/run.sh bench-persist ENTRIES ROUNDS DURATION SET_KEYS NOISE_PCT QUIET_WAIT CACHETTE_BIN POGOCACHE

ENTRIES=${ENTRIES:-1000000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
SET_KEYS=${SET_KEYS:-100000}
NOISE_PCT=${NOISE_PCT:-5}
QUIET_WAIT=${QUIET_WAIT:-0}
CACHETTE_BIN=${CACHETTE_BIN:-build/cachette}
POGOCACHE=${POGOCACHE:-}
SERVER_CPU=0
CLIENT_CPU=1
CONNS=64
MIX_SET_PCT=10

for v in ENTRIES ROUNDS DURATION SET_KEYS NOISE_PCT QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((ENTRIES >= 1000 && ENTRIES <= 10000000)) || die "ENTRIES must be 1000..10000000"
((ROUNDS >= 1 && ROUNDS <= 15)) || die "ROUNDS must be 1..15"
((DURATION >= 1 && DURATION <= 300)) || die "DURATION must be 1..300 seconds"
((SET_KEYS >= 1 && SET_KEYS <= 10000000)) || die "SET_KEYS must be 1..10000000"
((QUIET_WAIT <= 3600)) || die "QUIET_WAIT must be 0..3600 seconds"
for tool in redis-server redis-cli taskset timeout cc awk getconf stat df; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh peers installs it)"
done
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
if [ -n "$POGOCACHE" ]; then
    [ -x "$POGOCACHE" ] || die "POGOCACHE=$POGOCACHE is not an executable file"
fi
((BASH_VERSINFO[0] >= 5)) || die "needs bash 5 (\$EPOCHREALTIME)"
bench_files "persist-" persist "servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU"

# ---------------------------------------------------------------- cleanup ---

pids=()    # every long-lived process started here
job_pid="" # the load generator in progress, if any
snap_pid="" # the snapshot loop in progress, if any

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # shellcheck disable=SC2086 # the pids are words, or none
    finish_run "$rc" "*.log *.out" $job_pid $snap_pid "${pids[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Part 1 fills at ~50-150k entries/s per server and restarts each server
# 2 * ROUNDS times; parts 2 and 3 are 4 and 8 runs per round.
estimate=$((ENTRIES * 3 / 40000 + ROUNDS * 6 * (ENTRIES / 400000 + 2) + ROUNDS * 12 * (DURATION + 3) + 30))
[ -z "$POGOCACHE" ] || estimate=$((estimate + ENTRIES / 100000 + ROUNDS * 2 * (ENTRIES / 400000 + 2)))
budget=$((estimate * 2 + 300 + QUIET_WAIT))
say "about $(((estimate + 59) / 60)) minutes (stopped past $((budget / 60)))"
start_watchdog "$budget"

# This shell and what it starts run on the client's core.
taskset -pc "$CLIENT_CPU" $$ >/dev/null

# --------------------------------------------------------------- machine ---

cp -p "$CACHETTE_BIN" "$tmp/cachette" # a rebuild during the run changes nothing halfway
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/kvload" "$here/kvload.c"
kv="$tmp/kvload"

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
read -r fs_dev fs_type fs_mount < <(df -T "$tmp" | awk 'NR == 2 { print $1, $2, $7 }')
machine="$ncpu CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r); data directories in ${TMPDIR:-/tmp} ($fs_type on $fs_dev, mounted at $fs_mount)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include 2>/dev/null || commit+=" (with uncommitted changes under src/ or include/)"
versions="redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
[ -z "$POGOCACHE" ] || versions+=", $("$POGOCACHE" --version 2>/dev/null | head -1)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "# bench/persist/run.sh, $stamp"
    echo "command: $command_line"
    echo "machine: $machine"
    echo "commit: $commit"
    echo "versions: $versions"
    echo "load average at start: $load_start"
} >"$raw"
say "$machine"

# Preflight: how much of the two cores do others use while we do nothing?
# With QUIET_WAIT, waits up to that many seconds for a quiet second (other
# benchmarks or test suites on a shared machine come and go).
quiet_since=$SECONDS
preflight
while ((quiet_pct > NOISE_PCT && SECONDS - quiet_since < QUIET_WAIT)); do
    say "waiting for a quiet machine: others used ${quiet_pct}% of a core (top: ${quiet_top:-none})"
    sleep 9
    preflight
done
quiet_line="others used ${quiet_pct}% of a core over 1 s before the run (top: ${quiet_top:-none})"
((SECONDS - quiet_since < 2)) || quiet_line+=", after $((SECONDS - quiet_since)) s of waiting"
if ((quiet_pct > NOISE_PCT)); then
    say "WARNING: the machine is busy: $quiet_line; runs while it stays busy are flagged NOISY"
else
    say "machine quiet: $quiet_line"
fi
echo "preflight: $quiet_line" >>"$raw"

# --------------------------------------------------------------- servers ---

# Each start_* starts a server on CPU 0 on a free port and waits until it is
# ready; it sets srv_pid, srv_port, and ready_ms (exec to ready).
srv_pid="" srv_port="" ready_ms="" stop_ms=""

# start_server NAME TAG PROBE CMD...: CMD, with every "@PORT@" in its
# arguments replaced by a free port, its output in $tmp/NAME.TAG.log; ready
# when kvload's PROBE (http, redis or ping) says so. Tries three ports.
start_server() {
    local name=$1 log="$tmp/$1.$2.log" probe=$3 try t0 a args
    shift 3
    for ((try = 0; try < 3; try++)); do
        pick_port srv_port
        args=()
        for a in "$@"; do args+=("${a//@PORT@/$srv_port}"); done
        t0=$EPOCHREALTIME
        taskset -c "$SERVER_CPU" "${args[@]}" >"$log" 2>&1 &
        srv_pid=$!
        pids+=("$srv_pid")
        ready_ms=$(taskset -c "$CLIENT_CPU" "$kv" ready "$probe" "$srv_port" 300 "$t0" "$srv_pid" 2>>"$log") && return 0
        stop_pid "$srv_pid" # it exited (a port taken meanwhile?) or never got ready
    done
    cat "$log" >&2
    die "$name did not start"
}

start_cachette() { # start_cachette TAG DATADIR [FLAG...]
    local tag=$1 dir=$2
    shift 2
    start_server cachette "$tag" http "$tmp/cachette" --port @PORT@ --threads 1 --log-level warn \
        --data-dir "$dir" --snapshot-interval 0 "$@"
}

start_redis() { # start_redis TAG DIR [FLAG...]
    local tag=$1 dir=$2
    shift 2
    start_server redis "$tag" redis redis-server --port @PORT@ --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$dir" "$@"
}

start_pogocache() { # start_pogocache TAG FILE
    start_server pogocache "$1" ping "$POGOCACHE" -h 127.0.0.1 -p @PORT@ --threads 1 --persist "$2"
}

# running PID: true while PID runs (a zombie, not yet reaped, does not).
running() {
    local line
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    line=${line##*) }
    [[ ${line:0:1} != [ZX] ]]
}

# stop_server PID: SIGTERM, then up to 120 s to exit (cachette writes a
# snapshot, Pogocache its file), then SIGKILL; sets stop_ms, SIGTERM to exit,
# to within a few milliseconds (the poll forks a sleep).
stop_server() {
    local pid=$1 t0 start=$SECONDS i
    t0=$EPOCHREALTIME
    kill -TERM "$pid" 2>/dev/null || true
    while running "$pid" && ((SECONDS - start < 120)); do sleep 0.002; done
    stop_ms=$(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) * 1000 }')
    if running "$pid"; then
        say "process $pid still runs 120 s after SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local kept=()
    for i in "${pids[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
    pids=("${kept[@]}")
}

# stat_of PORT NAME: a number from cachette's /stats.
stat_of() {
    taskset -c "$CLIENT_CPU" "$kv" call http "$1" "GET /stats" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

# resp_fill PORT: loads the ENTRIES entries over RESP with redis-cli --pipe.
resp_fill() {
    local out
    out=$( (taskset -c "$CLIENT_CPU" "$kv" fill resp - "$ENTRIES" |
        timeout 300 taskset -c "$CLIENT_CPU" redis-cli -h 127.0.0.1 -p "$1" --pipe) 2>&1) ||
        { echo "$out" >&2; return 1; }
    [[ $out == *"errors: 0, replies: $ENTRIES"* ]] || { echo "$out" >&2; return 1; }
}

dbsize() { taskset -c "$CLIENT_CPU" "$kv" call resp "$1" DBSIZE | sed -n 's/^[0-9.]* 0 :\([0-9]*\).*/\1/p'; }

# ----------------------------------------------------------- measurement ---

# srv_ticks VAR PID: CPU ticks of PID and of the children it has reaped
# (Redis's BGSAVE children), utime+stime+cutime+cstime.
srv_ticks() {
    local -n _t=$1
    local line
    _t=0
    read -r line 2>/dev/null <"/proc/$2/stat" || return 0
    local -a f
    read -ra f <<<"${line##*) }"
    _t=$((f[11] + f[12] + f[13] + f[14]))
}

# measured CMD...: runs CMD as a job (its output in $tmp/run.out), with the
# snapshot loop $snap_cmd beside it when set, and sets r_noisy, r_other (%
# of a core taken by other processes), r_busy0/1 (% busy of each core).
measured() {
    local b0 b1 a0 a1 s0 s1 c0 c1 t0 t1 rc=0
    # shellcheck disable=SC2034 # read through namerefs
    local -A pa=() pb=()
    snap_procs pa
    cpu_busy b0 "$SERVER_CPU"
    cpu_busy b1 "$CLIENT_CPU"
    srv_ticks s0 "$srv_pid"
    children_ticks c0
    t0=$EPOCHREALTIME
    if [ -n "${snap_cmd:-}" ]; then
        # shellcheck disable=SC2086 # snap_cmd is a word list
        taskset -c "$CLIENT_CPU" $snap_cmd >"$tmp/snap.out" 2>&1 &
        snap_pid=$!
    fi
    job_to "$tmp/run.out" taskset -c "$CLIENT_CPU" "$@" || rc=$?
    if [ -n "$snap_pid" ]; then
        wait "$snap_pid" || rc=$?
        snap_pid=""
    fi
    t1=$EPOCHREALTIME
    cpu_busy a0 "$SERVER_CPU"
    cpu_busy a1 "$CLIENT_CPU"
    srv_ticks s1 "$srv_pid"
    children_ticks c1
    snap_procs pb
    ((rc == 0)) || { cat "$tmp/run.out" "$tmp/snap.out" >&2 2>/dev/null; die "the load run failed"; }
    read -r r_busy0 r_busy1 r_other r_steal < <(awk -v t="$t1" -v s="$t0" -v hz="$hz" \
        -v b0="$((a0[0] - b0[0]))" -v b1="$((a1[0] - b1[0]))" -v st="$((a0[1] - b0[1] + a1[1] - b1[1]))" \
        -v ours="$((s1 - s0 + c1 - c0))" 'BEGIN {
            ticks = (t - s) * hz; other = b0 + b1 - ours; if (other < 0) other = 0
            printf "%.0f %.0f %.1f %.1f\n", 100 * b0 / ticks, 100 * b1 / ticks, 100 * other / ticks, 100 * st / ticks }')
    r_noisy=ok
    if awk -v o="$r_other" -v s="$r_steal" -v n="$NOISE_PCT" 'BEGIN { exit !(o > n || s > n) }'; then
        r_noisy=NOISY
    fi
    r_others=$(top_others pa pb $$ "${pids[@]}")
}

# run_field NAME: a figure from the last run's output line.
run_field() { awk -v n="$1" '{ for (i = 1; i < NF; i++) if ($i == n) print $(i + 1) }' "$tmp/run.out"; }

# ------------------------------------------------ 1. snapshot and load ---

declare -A snap_ms=() snap_wall=() snap_bytes=() load_ms=() stop_note=()
cdir="$tmp/cachette-data"
rdir="$tmp/redis-data"
pfile="$tmp/pogocache-data/pogocache.db"
mkdir -p "$rdir" "$tmp/pogocache-data"

say "1. filling cachette with $(thousands "$ENTRIES") entries (16-byte keys, 100-byte random binary values)"
start_cachette fill "$cdir"
c_port=$srv_port c_pid=$srv_pid
taskset -c "$CLIENT_CPU" "$kv" fill http "$c_port" "$ENTRIES" >"$tmp/fill.out" 2>&1 ||
    { cat "$tmp/fill.out" >&2; die "filling cachette failed"; }
echo "fill cachette: $(cat "$tmp/fill.out")" >>"$raw"
n=$(stat_of "$c_port" entries)
[ "$n" = "$ENTRIES" ] || die "cachette holds $n entries, not $ENTRIES"
c_used=$(stat_of "$c_port" bytes_used)

say "   filling redis-server the same way (redis-cli --pipe)"
start_redis fill "$rdir"
r_port=$srv_port r_pid=$srv_pid
t0=$EPOCHREALTIME
resp_fill "$r_port" || die "filling redis failed"
echo "fill redis: $ENTRIES in $(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }') s" >>"$raw"
n=$(dbsize "$r_port")
[ "$n" = "$ENTRIES" ] || die "redis holds $n keys, not $ENTRIES"

for ((round = 1; round <= ROUNDS; round++)); do
    order=(cachette redis)
    ((round % 2)) || order=(redis cachette)
    for s in "${order[@]}"; do
        if [ "$s" = cachette ]; then
            out=$(taskset -c "$CLIENT_CPU" "$kv" call http "$c_port" "POST /snapshot") || die "POST /snapshot failed"
            read -r wall status body <<<"$out"
            [ "$status" = 200 ] || die "POST /snapshot answered $status: $body"
            ms=$(sed -n 's/.*"milliseconds":\([0-9]*\).*/\1/p' <<<"$body")
            snap_bytes[cachette]=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$body")
            n=$(sed -n 's/.*"entries":\([0-9]*\).*/\1/p' <<<"$body")
            [ "$n" = "$ENTRIES" ] || die "the snapshot holds $n entries, not $ENTRIES"
            [ "$(stat -c %s "$cdir/snapshot")" = "${snap_bytes[cachette]}" ] || die "the snapshot's size is not its reported bytes"
        else
            out=$(taskset -c "$CLIENT_CPU" "$kv" call resp "$r_port" SAVE) || die "SAVE failed"
            read -r wall status body <<<"$out"
            [ "$status" = 0 ] || die "SAVE answered $body"
            ms=$wall
            snap_bytes[redis]=$(stat -c %s "$rdir/dump.rdb")
        fi
        snap_ms[$s]+="$ms "
        snap_wall[$s]+="$wall "
        echo "snapshot: round $round $s ms $ms wall_ms $wall bytes ${snap_bytes[$s]}" >>"$raw"
        say "   round $round/$ROUNDS: $s snapshot ${ms} ms (client ${wall} ms), ${snap_bytes[$s]} bytes"
    done
done

stop_server "$c_pid"
stop_note[cachette]="SIGTERM to exit, with the snapshot it writes at shutdown: ${stop_ms} ms"
echo "stop cachette (final snapshot): $stop_ms ms" >>"$raw"
stop_server "$r_pid"

for ((round = 1; round <= ROUNDS; round++)); do
    order=(cachette redis)
    ((round % 2)) || order=(redis cachette)
    for s in "${order[@]}"; do
        if [ "$s" = cachette ]; then
            start_cachette "load$round" "$cdir"
            n=$(stat_of "$srv_port" entries)
        else
            start_redis "load$round" "$rdir"
            n=$(dbsize "$srv_port")
        fi
        [ "$n" = "$ENTRIES" ] || die "$s loaded $n entries, not $ENTRIES"
        load_ms[$s]+="$ready_ms "
        echo "load: round $round $s ms $ready_ms" >>"$raw"
        stop_server "$srv_pid"
        [ "$s" = cachette ] && echo "stop cachette (final snapshot): $stop_ms ms" >>"$raw"
        say "   round $round/$ROUNDS: $s loaded $(thousands "$n") entries in $ready_ms ms"
    done
done

if [ -n "$POGOCACHE" ]; then
    say "   pogocache: filling, then $ROUNDS stop (save) / start (load) cycles"
    start_pogocache fill "$pfile"
    resp_fill "$srv_port" || die "filling pogocache failed"
    for ((round = 1; round <= ROUNDS; round++)); do
        stop_server "$srv_pid"
        [ -s "$pfile" ] || die "pogocache left no $pfile"
        snap_ms[pogocache]+="$stop_ms "
        snap_wall[pogocache]+="$stop_ms "
        snap_bytes[pogocache]=$(stat -c %s "$pfile")
        start_pogocache "load$round" "$pfile"
        n=$(dbsize "$srv_port")
        [ "$n" = "$ENTRIES" ] || say "   pogocache holds $n keys after loading, not $ENTRIES"
        load_ms[pogocache]+="$ready_ms "
        echo "pogocache: round $round save_ms $stop_ms bytes ${snap_bytes[pogocache]} load_ms $ready_ms dbsize $n" >>"$raw"
        say "   round $round/$ROUNDS: pogocache saved in $stop_ms ms (${snap_bytes[pogocache]} bytes), loaded in $ready_ms ms"
    done
    stop_server "$srv_pid"
else
    say "   pogocache skipped (POGOCACHE=/path/to/pogocache measures it)"
    echo "pogocache: skipped (POGOCACHE unset)" >>"$raw"
fi

# --------------------------------- 2. throughput while snapshots run ---

declare -A tp_rps=() tp_p99=() tp_ratio_rps=() tp_ratio_p99=() tp_snaps=() tp_noisy=() tp_errors=()
say "2. 90/10 GET/SET over $(thousands "$ENTRIES") keys, $CONNS connections, ${DURATION}s runs, without and with snapshots"
start_cachette mix "$cdir"
c_port=$srv_port c_pid=$srv_pid
start_redis mix "$rdir"
r_port=$srv_port r_pid=$srv_pid

record_run() { # record_run PART ROUND SERVER SETTING EXTRA
    printf '%s: round %s %s %s rps %s p99_ms %s p50_ms %s max_ms %s errors %s misses %s cpu0 %s%% cpu1 %s%% other %s%% steal %s%% %s others: %s; %s\n' \
        "$1" "$2" "$3" "$4" "$(run_field rps)" "$(run_field p99_ms)" "$(run_field p50_ms)" "$(run_field max_ms)" \
        "$(run_field errors)" "$(run_field misses)" "$r_busy0" "$r_busy1" "$r_other" "$r_steal" "$r_noisy" "${r_others:--}" "$5" >>"$raw"
}

for ((round = 1; round <= ROUNDS; round++)); do
    order=(cachette redis)
    ((round % 2)) || order=(redis cachette)
    for s in "${order[@]}"; do
        if [ "$s" = cachette ]; then
            srv_pid=$c_pid port=$c_port proto=http probe=http
        else
            srv_pid=$r_pid port=$r_port proto=resp probe=redis
        fi
        declare -A got=()
        settings=(none snapshots)
        ((round % 2)) || settings=(snapshots none)
        for setting in "${settings[@]}"; do
            snap_cmd=""
            [ "$setting" = snapshots ] && snap_cmd="$kv snaploop $probe $port $DURATION"
            measured "$kv" run "$proto" "$port" "$CONNS" "$DURATION" "$ENTRIES" "$MIX_SET_PCT"
            extra=""
            if [ "$setting" = snapshots ]; then
                extra=$(tr '\n' ' ' <"$tmp/snap.out")
                tp_snaps[$s]+="$(awk '{ print $2 }' "$tmp/snap.out") "
            fi
            record_run mix "$round" "$s" "$setting" "$extra"
            got[$setting]="$(run_field rps) $(run_field p99_ms)"
            tp_rps[$s:$setting]+="$(run_field rps) "
            tp_p99[$s:$setting]+="$(run_field p99_ms) "
            [ "$r_noisy" = ok ] || tp_noisy[$s:$setting]=$((${tp_noisy[$s:$setting]:-0} + 1))
            [ "$(run_field errors)" = 0 ] || tp_errors[$s:$setting]=$((${tp_errors[$s:$setting]:-0} + 1))
            say "   round $round/$ROUNDS: $s, $setting: $(run_field rps) req/s, p99 $(run_field p99_ms) ms, $r_noisy${extra:+ ($extra)}"
        done
        read -r rn pn <<<"${got[none]}"
        read -r rs ps <<<"${got[snapshots]}"
        tp_ratio_rps[$s]+="$(awk -v a="$rs" -v b="$rn" 'BEGIN { printf "%.3f", a / b }') "
        tp_ratio_p99[$s]+="$(awk -v a="$ps" -v b="$pn" 'BEGIN { printf "%.3f", a / b }') "
    done
done
snap_cmd=""
stop_server "$c_pid"
stop_server "$r_pid"

# ------------------------------------------- 3. SETs under each log setting ---

declare -A al_rps=() al_p99=() al_ratio=() al_noisy=() al_errors=()
c_modes=(off no everysec always)
r_modes=(noaof no everysec always)
say "3. SET of 100-byte values over $(thousands "$SET_KEYS") keys, $CONNS connections, ${DURATION}s per setting, a fresh server each"
for ((round = 1; round <= ROUNDS; round++)); do
    order=(cachette redis)
    ((round % 2)) || order=(redis cachette)
    for s in "${order[@]}"; do
        if [ "$s" = cachette ]; then modes=("${c_modes[@]}"); else modes=("${r_modes[@]}"); fi
        ((round % 2)) || modes=("${modes[3]}" "${modes[2]}" "${modes[1]}" "${modes[0]}")
        declare -A got=()
        for m in "${modes[@]}"; do
            dir="$tmp/alog-$s"
            rm -rf "$dir"
            mkdir -p "$dir"
            if [ "$s" = cachette ]; then
                start_cachette "alog-$m" "$dir" --append-log "$m"
                proto=http
            elif [ "$m" = noaof ]; then
                start_redis "alog-$m" "$dir"
                proto=resp
            else
                start_redis "alog-$m" "$dir" --appendonly yes --appendfsync "$m" --auto-aof-rewrite-percentage 0
                proto=resp
            fi
            measured "$kv" run "$proto" "$srv_port" "$CONNS" "$DURATION" "$SET_KEYS" 100
            logged=$(du -sb "$dir" | cut -f1)
            stop_server "$srv_pid"
            rm -rf "$dir"
            record_run alog "$round" "$s" "$m" "dir_bytes_after_run $logged"
            got[$m]=$(run_field rps)
            al_rps[$s:$m]+="$(run_field rps) "
            al_p99[$s:$m]+="$(run_field p99_ms) "
            [ "$r_noisy" = ok ] || al_noisy[$s:$m]=$((${al_noisy[$s:$m]:-0} + 1))
            [ "$(run_field errors)" = 0 ] || al_errors[$s:$m]=$((${al_errors[$s:$m]:-0} + 1))
            say "   round $round/$ROUNDS: $s $m: $(run_field rps) req/s, p99 $(run_field p99_ms) ms, $r_noisy"
        done
        base=${modes[0]}
        [ "$base" = off ] || [ "$base" = noaof ] || base=${modes[3]}
        for m in "${modes[@]}"; do
            al_ratio[$s:$m]+="$(awk -v a="${got[$m]}" -v b="${got[$base]}" 'BEGIN { printf "%.3f", a / b }') "
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at end: $load_end" >>"$raw"

# ----------------------------------------------------------------- table ---

med() { median <<<"$1"; }
fmt_int() { awk -v x="$1" 'BEGIN { s = sprintf("%d", x + 0.5); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    print s out }'; }
x() { awk -v v="$1" 'BEGIN { printf "%.2fx", v }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
noise() { # noise COUNT ERRORS
    local n="clean"
    (($1 == 0)) || n="NOISY ($1 of $ROUNDS)"
    ((${2:-0} == 0)) || n+=", ERRORS in $2 runs"
    echo "$n"
}

met=0 missed=0
goal() { # goal TEXT OK: sets g to "TEXT: met" or "TEXT: **missed**" and counts it
    if [ "$2" = 1 ]; then
        g="$1: met"
        met=$((met + 1))
    else
        g="$1: **missed**"
        missed=$((missed + 1))
    fi
}
ok() { if "$@"; then echo 1; else echo 0; fi; }

c_snap=$(med "${snap_ms[cachette]}") r_snap=$(med "${snap_ms[redis]}")
c_load=$(med "${load_ms[cachette]}") r_load=$(med "${load_ms[redis]}")
{
    echo "### Persistence beside Redis, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Machine: $machine"
    echo "- Commit: $commit; $versions"
    echo "- Setup: every server on CPU $SERVER_CPU (cachette \`--threads 1\`, redis-server, Pogocache \`--threads 1\`), kvload"
    echo "  (bench/persist/kvload.c) on CPU $CLIENT_CPU; $ROUNDS interleaved rounds, medians. Load average $load_start at start,"
    echo "  $load_end at the end. Preflight: $quiet_line. A run is NOISY where others took more than ${NOISE_PCT}% of a core."
    echo
    echo "**1. $(thousands "$ENTRIES") entries: 16-byte keys, 100-byte random binary values** (cachette: PUT with"
    echo "\`Content-Type: application/octet-stream\`; Redis: the same bytes by \`redis-cli --pipe\`)."
    echo
    echo "| Server | snapshot | snapshot, client wall | file | bytes/entry | load (exec to ready) | cachette ÷ it: snapshot | cachette ÷ it: load |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for s in cachette redis pogocache; do
        [ -n "${snap_ms[$s]:-}" ] || continue
        sm=$(med "${snap_ms[$s]}") sw=$(med "${snap_wall[$s]}") lm=$(med "${load_ms[$s]}")
        what="POST /snapshot (server's ms)"
        [ "$s" = redis ] && what="SAVE"
        [ "$s" = pogocache ] && what="SIGTERM to exit"
        rs="—" rl="—"
        if [ "$s" != cachette ]; then
            rs=$(x "$(awk -v a="$c_snap" -v b="$sm" 'BEGIN { print a / b }')")
            rl=$(x "$(awk -v a="$c_load" -v b="$lm" 'BEGIN { print a / b }')")
        fi
        printf '| %s, %s | %s ms | %s ms | %s | %s | %s ms | %s | %s |\n' "$s" "$what" "$(fmt_int "$sm")" "$(fmt_int "$sw")" \
            "$(awk -v b="${snap_bytes[$s]}" 'BEGIN { printf "%.1f MB", b / 1e6 }')" \
            "$(awk -v b="${snap_bytes[$s]}" -v n="$ENTRIES" 'BEGIN { printf "%.1f", b / n }')" "$(fmt_int "$lm")" "$rs" "$rl"
    done
    [ -n "$POGOCACHE" ] || echo "| pogocache | skipped (POGOCACHE unset) | | | | | | |"
    echo
    echo "Per round: cachette snapshot ${snap_ms[cachette]}ms, SAVE ${snap_ms[redis]}ms; loads: cachette ${load_ms[cachette]}ms,"
    echo "Redis ${load_ms[redis]}ms${POGOCACHE:+, Pogocache ${load_ms[pogocache]:-}ms}. cachette's store: bytes_used $c_used (/stats)."
    echo "${stop_note[cachette]}."
    echo
    echo "**2. 90/10 GET/SET over the $(thousands "$ENTRIES") keys, $CONNS connections, ${DURATION} s runs**: without snapshots, and with"
    echo "snapshots back to back for the whole run (cachette POST /snapshot, Redis BGSAVE). Ratios: median of per-round ratios."
    echo
    echo "| Server | req/s, none | p99, none | req/s, snapshots | p99, snapshots | snapshots per run | req/s ratio | p99 ratio | Noise |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for s in cachette redis; do
        printf '| %s | %s | %.2f ms | %s | %.2f ms | %s | %s | %s | %s |\n' "$s" \
            "$(fmt_int "$(med "${tp_rps[$s:none]}")")" "$(med "${tp_p99[$s:none]}")" \
            "$(fmt_int "$(med "${tp_rps[$s:snapshots]}")")" "$(med "${tp_p99[$s:snapshots]}")" "$(med "${tp_snaps[$s]}")" \
            "$(x "$(med "${tp_ratio_rps[$s]}")")" "$(x "$(med "${tp_ratio_p99[$s]}")")" \
            "none $(noise "${tp_noisy[$s:none]:-0}" "${tp_errors[$s:none]:-0}"); snapshots $(noise "${tp_noisy[$s:snapshots]:-0}" "${tp_errors[$s:snapshots]:-0}")"
    done
    echo
    echo "**3. SET of 100-byte random values over $(thousands "$SET_KEYS") keys, $CONNS connections, ${DURATION} s runs**, a fresh server"
    echo "on an empty directory per run. Ratio: to the same server's baseline (off / no AOF), median of per-round ratios."
    echo
    echo "| Server | setting | req/s | p99 | ratio to its baseline | Noise |"
    echo "|---|---|---:|---:|---:|---|"
    for s in cachette redis; do
        if [ "$s" = cachette ]; then modes=("${c_modes[@]}"); else modes=("${r_modes[@]}"); fi
        for m in "${modes[@]}"; do
            label=$m
            [ "$s" = cachette ] && label="--append-log $m"
            [ "$s" = redis ] && label="appendonly yes, appendfsync $m"
            [ "$m" = noaof ] && label="no AOF"
            printf '| %s | %s | %s | %.2f ms | %s | %s |\n' "$s" "$label" "$(fmt_int "$(med "${al_rps[$s:$m]}")")" \
                "$(med "${al_p99[$s:$m]}")" "$(x "$(med "${al_ratio[$s:$m]}")")" \
                "$(noise "${al_noisy[$s:$m]:-0}" "${al_errors[$s:$m]:-0}")"
        done
    done
    echo
    echo "**Goals (issue 14)**"
    echo
    goal "snapshot ≤ 0.5x Redis's SAVE time ($(fmt_int "$c_snap") ms vs $(fmt_int "$r_snap") ms, $(x "$(awk -v a="$c_snap" -v b="$r_snap" 'BEGIN { print a / b }')"))" \
        "$(ok le "$c_snap" "$(awk -v b="$r_snap" 'BEGIN { print b / 2 }')")"
    echo "- $g"
    if [ -n "$POGOCACHE" ]; then
        p_load=$(med "${load_ms[pogocache]}")
        goal "load ≤ 0.5x Pogocache's ($(fmt_int "$c_load") ms vs $(fmt_int "$p_load") ms, $(x "$(awk -v a="$c_load" -v b="$p_load" 'BEGIN { print a / b }')"))" \
            "$(ok le "$c_load" "$(awk -v b="$p_load" 'BEGIN { print b / 2 }')")"
        echo "- $g"
    else
        echo "- load ≤ 0.5x Pogocache's: not measured here (POGOCACHE unset). Against the 0.70 s Pogocache took elsewhere"
        echo "  (another machine): $(fmt_int "$c_load") ms is $(x "$(awk -v a="$c_load" 'BEGIN { print a / 700 }')") (goal ≤ 350 ms)."
        echo "  Against Redis in this run: $(fmt_int "$c_load") ms vs $(fmt_int "$r_load") ms, $(x "$(awk -v a="$c_load" -v b="$r_load" 'BEGIN { print a / b }')")."
    fi
    c_rr=$(med "${tp_ratio_rps[cachette]}") c_pr=$(med "${tp_ratio_p99[cachette]}")
    goal "req/s with snapshots running ≥ 0.8x ($(x "$c_rr"))" "$(ok le 0.8 "$c_rr")"
    echo "- $g"
    goal "p99 with snapshots running ≤ 2x ($(x "$c_pr"))" "$(ok le "$c_pr" 2)"
    echo "- $g"
    for pair in "everysec 0.9" "always 0.5"; do
        read -r m want <<<"$pair"
        c_r=$(med "${al_ratio[cachette:$m]}") r_r=$(med "${al_ratio[redis:$m]}")
        goal "--append-log $m ≥ ${want}x of off ($(x "$c_r"))" "$(ok le "$want" "$c_r")"
        echo "- $g"
    done
    for m in no everysec always; do
        c_r=$(med "${al_ratio[cachette:$m]}") r_r=$(med "${al_ratio[redis:$m]}")
        goal "$m: ratio better than Redis's appendfsync $m ($(x "$c_r") vs $(x "$r_r"))" \
            "$(ok awk -v a="$c_r" -v b="$r_r" 'BEGIN { exit !(a > b) }')"
        echo "- $g"
    done
    echo
    echo "Goals: $met met, $missed missed. Raw per-run figures: \`$raw\`."
} >"$tmp/table.md"

{ echo; cat "$tmp/table.md"; } >>"$raw"
cat "$tmp/table.md"
