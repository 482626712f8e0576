#!/usr/bin/env bash
# cachette side by side with its peers, in one run (`make bench-peers`, issue 5).
#
# Peers, all from Debian 12 packages (scripts/deps.sh peers installs them):
#
#   gin-syncmap    Go + Gin + sync.Map, the seed's design (gin-syncmap/, built
#                  here offline in GOPATH mode), GOMAXPROCS = its cores (1)
#   gin-mutexmap   the same with a map behind a sync.RWMutex (gin-mutexmap/)
#   webdis         Webdis (1 thread, 1 Redis connection: the fastest setting
#                  on one core) in front of redis-server, both on the
#                  server's core: GET /GET/k, /SET/k/v, PUT /SET/k for big values
#   nginx          nginx-light returning a fixed {"key":"user42","value":"Alice"}
#                  (bench/http/nginx.conf.in): HTTP/1.1's near-limit on a core
#   redis-benchmark, memcaslap   the native protocols, for context: Redis (the
#                  same redis-server) and memcached (-t 1), 16-byte keys,
#                  32-byte values, 64 connections, no pipelining
#   pogocache      only when POGOCACHE=/path/to/pogocache is given (never built
#                  here): HTTP PUT/GET /key. It answers every HTTP request with
#                  Connection: close, so over HTTP it is bound by connection
#                  setup, not by its cache.
#
# Method (as bench/http/run.sh): every server on CPU 0 (taskset; Webdis and
# its Redis share it), the load generator on CPU 1: wrk -t1 --latency for
# HTTP/1.1, h2load -c1 -m64 for HTTP/2, redis-benchmark and memcaslap for the
# native rows. A warm-up pass (WARMUP seconds per row, discarded), then ROUNDS
# interleaved rounds (every row of every workload, then again), DURATION
# seconds each. Per row: median req/s, median p99, and the median CPU time per
# request of the server's core (busy ticks of cpu0 in /proc/stat over the
# run / requests completed), which still compares servers once wrk's core
# saturates first. A run where other processes took more than NOISE_PCT
# percent of a core (or the hypervisor stole that much) is flagged NOISY.
#
# Workloads (one row per server that can do it):
#
#   get1    GET one key (user42), 64 connections: all HTTP peers
#   get1c1  the same over 1 connection (latency): cachette, gin-syncmap,
#           webdis, nginx
#   get1h2  cachette over h2c, h2load -c 1 -m 64 (64 streams), beside get1
#   getU    GET over KEYS (100,000) preloaded keys, uniform; + redis-benchmark GET
#   getZ    the same, Zipf 0.99 (workload.lua precomputes the draws)
#   set     POST/SET over the KEYS keys, 32-byte values; + redis-benchmark SET
#   mix     90% GET / 10% SET over the KEYS keys; + memcaslap 90/10
#   get1k   GET one 1 KiB value: cachette raw (?raw) and JSON, Gin (JSON),
#           Webdis (.txt, raw)
#   set1k   SET 1 KiB values over 1,000 keys: cachette PUT raw, Gin POST JSON,
#           Webdis PUT /SET/k
#   get64k  GET one 64 KiB value, as get1k (cachette raw only)
#   set64k  SET 64 KiB values over 100 keys, as set1k
#
# To hold the default run near 20 minutes, the 64-connection rows cover every
# workload, the 1-connection rows GET of one key only, and gin-mutexmap (the
# same Go stack as gin-syncmap but the map) runs get1, getU and set only.
#
# Then memory: each of cachette, gin-syncmap, gin-mutexmap, redis-server and
# memcached started fresh and loaded with MEM_ENTRIES entries (16-byte keys,
# 32-byte values): VmRSS, and bytes per entry.
#
# Goals (issue 5): cachette ≥ 2x gin-syncmap's and webdis's req/s, ≥ 0.9x
# nginx's on GET, ahead of Pogocache on GET and PUT; where the load
# generator's core saturates first (CPU 1 ≥ CLIENT_SAT percent busy in
# cachette's run), server CPU per request instead: ≤ 0.5x gin-syncmap's and
# webdis's, ≤ 1.15x nginx's. p99 at 64 connections ≤ the best HTTP peer's.
# Memory: fewer bytes per entry than Redis and gin-syncmap.
#
# Output: a Markdown table on stdout, progress on stderr, every per-run figure
# in bench/results/peers-<timestamp>.txt.
#
# Then, in the same run, the Redis protocol beside Redis and Pogocache
# (issue 16): bench/peers/resp.sh, which also runs alone, with its own
# table and raw file; its workloads are named resp (all of them) or
# resp-get, resp-set, resp-incr, resp-mset in ONLY, and its settings are
# its RESP_* variables (NOISE_PCT, CLIENT_SAT, CACHETTE_BIN and POGOCACHE
# are shared).
#
# Environment: DURATION (10) ROUNDS (3) WARMUP (2) KEYS (100000)
# MEM_ENTRIES (1000000; 0 skips memory) NOISE_PCT (3) CLIENT_SAT (95)
# ONLY (workloads, comma-separated, e.g. ONLY=get1,set or ONLY=resp; default
# all) CACHETTE_BIN (build/cachette) POGOCACHE (unset).
#
# Everything is bounded in time (a watchdog stops the run past its budget),
# talks only to 127.0.0.1, and every process started here is stopped on exit,
# error, Ctrl-C or SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
BENCH_NAME=bench-peers
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

bench_command bench/peers/run.sh bench-peers DURATION ROUNDS WARMUP KEYS MEM_ENTRIES NOISE_PCT CLIENT_SAT ONLY CACHETTE_BIN POGOCACHE

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
KEYS=${KEYS:-100000}
MEM_ENTRIES=${MEM_ENTRIES:-1000000}
NOISE_PCT=${NOISE_PCT:-3}
CLIENT_SAT=${CLIENT_SAT:-95}
ONLY=${ONLY:-}
CACHETTE_BIN=${CACHETTE_BIN:-build/cachette}
POGOCACHE=${POGOCACHE:-}
SERVER_CPU=0
CLIENT_CPU=1
SET1K_KEYS=1000
SET64K_KEYS=100

# The Redis protocol's rows are resp.sh's: it runs after the rows here
# (run_resp) or, where ONLY names none of the rows here, instead of them.
run_resp=1
peers_only=""
if [ -n "$ONLY" ]; then
    run_resp=0
    for w in ${ONLY//,/ }; do
        case $w in resp | resp-*) run_resp=1 ;; *) peers_only+="${peers_only:+,}$w" ;; esac
    done
    [ -n "$peers_only" ] || exec "$here/resp.sh"
fi

for v in DURATION ROUNDS WARMUP KEYS MEM_ENTRIES NOISE_PCT CLIENT_SAT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((DURATION >= 1 && DURATION <= 300)) || die "DURATION must be 1..300 seconds"
((ROUNDS >= 1 && ROUNDS <= 15)) || die "ROUNDS must be 1..15"
((WARMUP <= 60)) || die "WARMUP must be 0..60 seconds"
((KEYS >= 1 && KEYS <= 1000000)) || die "KEYS must be 1..1000000"
((MEM_ENTRIES <= 5000000)) || die "MEM_ENTRIES must be at most 5000000"
((CLIENT_SAT >= 1 && CLIENT_SAT <= 100)) || die "CLIENT_SAT must be 1..100"

memcaslap_bin=$(command -v memcaslap || command -v memaslap || true)
[ -n "$memcaslap_bin" ] || die "memcaslap (or memaslap) is missing (scripts/deps.sh peers installs libmemcached-tools)"
for tool in wrk h2load nginx webdis redis-server redis-cli redis-benchmark memcached go taskset timeout curl cc awk getconf; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh peers installs it)"
done
gin_src=/usr/share/gocode/src/github.com/gin-gonic/gin
[ -d "$gin_src" ] || die "$gin_src is missing (scripts/deps.sh peers installs golang-github-gin-gonic-gin-dev)"
[ -x "$CACHETTE_BIN" ] || die "$CACHETTE_BIN is missing (make build/cachette)"
if [ -n "$POGOCACHE" ]; then
    [ -x "$POGOCACHE" ] || die "POGOCACHE=$POGOCACHE is not an executable file"
fi
bench_files "peers-" peers "servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU"

# ---------------------------------------------------------------- cleanup ---

pids=()    # every long-lived process started here
job_pid="" # the load generator or loader in progress, if any

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # shellcheck disable=SC2086 # the pids are words, or none
    finish_run "$rc" "*.out *.err *.log nginx/error.log" $job_pid "${pids[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ workloads ---

all_workloads=(get1 get1c1 get1h2 getU getZ set mix get1k set1k get64k set64k)
declare -A wl_label=(
    [get1]="GET one key (user42), 64 conns"
    [get1c1]="GET one key (user42), 1 conn"
    [get1h2]="GET one key, HTTP/2 h2c, 1 conn × 64 streams"
    [getU]="GET, $(thousands "$KEYS") keys, uniform"
    [getZ]="GET, $(thousands "$KEYS") keys, Zipf 0.99"
    [set]="SET, $(thousands "$KEYS") keys, 32-byte values"
    [mix]="90/10 GET/SET, $(thousands "$KEYS") keys"
    [get1k]="GET one 1 KiB value"
    [set1k]="SET 1 KiB values, $(thousands $SET1K_KEYS) keys"
    [get64k]="GET one 64 KiB value"
    [set64k]="SET 64 KiB values, $SET64K_KEYS keys"
)
# The contenders of each workload, cachette first. "cachette" is JSON in the
# 32-byte workloads and raw (PUT, ?raw) in the value-size ones, where
# "cachette-json" is cachette's JSON API.
declare -A wl_servers=(
    [get1]="cachette gin-syncmap gin-mutexmap webdis nginx"
    [get1c1]="cachette gin-syncmap webdis nginx"
    [get1h2]="cachette"
    [getU]="cachette gin-syncmap gin-mutexmap webdis redis-benchmark"
    [getZ]="cachette gin-syncmap webdis"
    [set]="cachette gin-syncmap gin-mutexmap webdis redis-benchmark"
    [mix]="cachette gin-syncmap webdis memcaslap"
    [get1k]="cachette cachette-json gin-syncmap webdis"
    [set1k]="cachette gin-syncmap webdis"
    [get64k]="cachette gin-syncmap webdis"
    [set64k]="cachette gin-syncmap webdis"
)
if [ -n "$POGOCACHE" ]; then
    for w in get1 getU set get1k set1k; do wl_servers[$w]+=" pogocache"; done
fi
workloads=()
if [ -n "$ONLY" ]; then
    for w in ${peers_only//,/ }; do
        [ -n "${wl_servers[$w]:-}" ] || die "ONLY: no workload '$w' (have: ${all_workloads[*]} resp)"
    done
fi
for w in "${all_workloads[@]}"; do
    if [ -z "$ONLY" ] || [[ ",$ONLY," == *",$w,"* ]]; then workloads+=("$w"); fi
done
runs=()
for w in "${workloads[@]}"; do
    for s in ${wl_servers[$w]}; do runs+=("$w:$s"); done
done
# The servers the runs need.
declare -A need=()
for r in "${runs[@]}"; do
    s=${r#*:}
    case $s in
    cachette-json) s=cachette ;;
    redis-benchmark) s=webdis ;; # the same redis-server
    memcaslap) s=memcached ;;
    esac
    need[$s]=1
done

display() {
    case $1 in
    cachette) case $2 in get1k | set1k | get64k | set64k) echo "cachette (raw)" ;; get1h2) echo "cachette (h2c)" ;; *) echo cachette ;; esac ;;
    cachette-json) echo "cachette (JSON)" ;;
    webdis) echo "webdis+redis" ;;
    nginx) echo "nginx (fixed answer)" ;;
    redis-benchmark) echo "redis (redis-benchmark, RESP)" ;;
    memcaslap) echo "memcached (memcaslap, ASCII)" ;;
    pogocache) echo "pogocache (Connection: close)" ;;
    *) echo "$1" ;;
    esac
}

# Per row: the warm-up, the rounds, and about half a second around each run.
per_run=$((WARMUP + ROUNDS * DURATION + (ROUNDS + 2) / 2))
estimate=$((${#runs[@]} * per_run + 40 + (MEM_ENTRIES > 0 ? 10 + MEM_ENTRIES * 45 / 1000000 : 0)))
budget=$((estimate * 2 + 300))
say "${#runs[@]} rows, ${ROUNDS} round(s) of ${DURATION}s after a ${WARMUP}s warm-up: about $(((estimate + 59) / 60)) minutes$( ((run_resp)) && echo ", then bench/peers/resp.sh")"

# A watchdog bounds the whole run.
start_watchdog "$budget"

# This shell and what it starts run on the client's core.
taskset -pc "$CLIENT_CPU" $$ >/dev/null

# ---------------------------------------------------------------- builds ---

say "building the loader and the Go peers"
# The run uses a copy of the binary, so a rebuild of build/cachette during
# the run (make, another shell) changes nothing halfway.
cp -p "$CACHETTE_BIN" "$tmp/cachette"
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$tmp/load" "$root/bench/http/load.c"
gocache=${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/go-build}
mkdir -p "$gocache" 2>/dev/null || gocache="$tmp/gocache"
for g in gin-syncmap gin-mutexmap; do
    [ -n "${need[$g]:-}" ] || ((MEM_ENTRIES > 0)) || continue
    (cd "$here/$g" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off GOCACHE="$gocache" \
        timeout 300 go build -o "$tmp/$g" .) || die "building $g failed"
done

# Values for the value-size workloads, and their JSON envelopes.
for n in 1024 65536; do
    head -c "$n" /dev/zero | tr '\0' x >"$tmp/v$n"
done
json_body() { # json_body KEY FILE -> {"key":"KEY","value":"<FILE>"}
    printf '{"key":"%s","value":"' "$1"
    cat "$2"
    printf '"}'
}

# --------------------------------------------------------------- servers ---

# Each start_* sets <name>_port and <name>_pid (and adds every process to
# pids); srv_pids[name] lists the processes whose CPU time is the server's.
declare -A srv_pids=()
cachette_port="" gin_port="" gin_syncmap_port="" gin_mutexmap_port="" redis_port="" webdis_port=""
nginx_port="" memcached_port="" pogocache_port=""

start_cachette() { # start_cachette TAG
    taskset -c "$SERVER_CPU" "$tmp/cachette" --port 0 --threads 1 --log-level warn \
        >"$tmp/cachette.$1.out" 2>"$tmp/cachette.$1.err" &
    cachette_pid=$!
    pids+=("$cachette_pid")
    wait_banner "$tmp/cachette.$1.out" "$cachette_pid" '.*listening on http://127\.0\.0\.1:\([0-9]*\).*' cachette_port ||
        { cat "$tmp/cachette.$1.err" >&2; die "cachette did not start"; }
    srv_pids[cachette]=$cachette_pid
}

start_gin() { # start_gin NAME TAG: sets gin_port, gin_pid
    GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$tmp/$1" >"$tmp/$1.$2.out" 2>&1 &
    gin_pid=$!
    pids+=("$gin_pid")
    wait_banner "$tmp/$1.$2.out" "$gin_pid" '.*listening on http://127\.0\.0\.1:\([0-9]*\).*' gin_port ||
        { cat "$tmp/$1.$2.out" >&2; die "$1 did not start"; }
    srv_pids[$1]=$gin_pid
}

redis_ping() { [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

start_redis() { # start_redis TAG: sets redis_port, redis_pid
    local try
    mkdir -p "$tmp/redis.$1"
    for ((try = 0; try < 5; try++)); do
        pick_port redis_port
        taskset -c "$SERVER_CPU" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
            --appendonly no --daemonize no --dir "$tmp/redis.$1" >"$tmp/redis.$1.out" 2>&1 &
        redis_pid=$!
        pids+=("$redis_pid")
        wait_until 10 redis_ping "$redis_port" && return 0
        stop_pid "$redis_pid"
    done
    cat "$tmp/redis.$1.out" >&2
    die "redis-server did not start"
}

webdis_ping() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$1/PING")" = '{"PING":[true,"PONG"]}' ]; }

start_webdis() { # webdis in front of a fresh redis-server
    local try
    start_redis main
    for ((try = 0; try < 5; try++)); do
        pick_port webdis_port
        cat >"$tmp/webdis.json" <<EOF
{
    "redis_host": "127.0.0.1",
    "redis_port": $redis_port,
    "redis_auth": null,
    "http_host": "127.0.0.1",
    "http_port": $webdis_port,
    "threads": 1,
    "pool_size": 1,
    "daemonize": false,
    "database": 0,
    "verbosity": 0,
    "logfile": "$tmp/webdis.log"
}
EOF
        taskset -c "$SERVER_CPU" webdis "$tmp/webdis.json" >"$tmp/webdis.out" 2>&1 &
        webdis_pid=$!
        pids+=("$webdis_pid")
        if wait_until 10 webdis_ping "$webdis_port"; then
            srv_pids[webdis]="$webdis_pid $redis_pid"
            srv_pids[redis-benchmark]="$redis_pid $webdis_pid"
            return 0
        fi
        stop_pid "$webdis_pid"
    done
    cat "$tmp/webdis.out" "$tmp/webdis.log" >&2 2>/dev/null || true
    die "webdis did not start"
}

start_nginx() {
    local try i
    mkdir -p "$tmp/nginx"
    for ((try = 0; try < 5; try++)); do
        pick_port nginx_port
        sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$nginx_port|g" "$root/bench/http/nginx.conf.in" >"$tmp/nginx/nginx.conf"
        taskset -c "$SERVER_CPU" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
            -c "$tmp/nginx/nginx.conf" >"$tmp/nginx/out" 2>&1 &
        nginx_pid=$!
        pids+=("$nginx_pid")
        for ((i = 0; i < 100; i++)); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            if ! port_free "$nginx_port" && [ -n "$(pgrep -P "$nginx_pid")" ]; then
                nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
                srv_pids[nginx]="$nginx_pid $nginx_worker"
                pids+=("$nginx_worker")
                return 0
            fi
            sleep 0.05
        done
        stop_pid "$nginx_pid"
    done
    cat "$tmp/nginx/out" "$tmp/nginx/error.log" >&2 2>/dev/null || true
    die "nginx did not start"
}

mc_user=()
[ "$(id -u)" -eq 0 ] && mc_user=(-u root) # memcached refuses root without -u

# mc_stat PORT NAME: memcached's "stats" figure NAME.
mc_stat() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"; printf "stats\r\nquit\r\n" >&3; cat <&3' "$1" 2>/dev/null |
        tr -d '\r' | awk -v n="$2" '$1 == "STAT" && $2 == n { print $3 }'
}
mc_ready() { [ -n "$(mc_stat "$1" pid)" ]; }

start_memcached() { # start_memcached TAG: sets memcached_port, memcached_pid
    local try
    for ((try = 0; try < 5; try++)); do
        pick_port memcached_port
        taskset -c "$SERVER_CPU" memcached "${mc_user[@]}" -l 127.0.0.1 -p "$memcached_port" -U 0 -t 1 \
            -m 4096 -c 4096 >"$tmp/memcached.$1.out" 2>&1 &
        memcached_pid=$!
        pids+=("$memcached_pid")
        if wait_until 10 mc_ready "$memcached_port"; then
            srv_pids[memcaslap]=$memcached_pid
            return 0
        fi
        stop_pid "$memcached_pid"
    done
    cat "$tmp/memcached.$1.out" >&2
    die "memcached did not start"
}

pogo_ready() { ! port_free "$1"; }

start_pogocache() { # start_pogocache TAG: sets pogocache_port, pogocache_pid
    local try
    for ((try = 0; try < 5; try++)); do
        pick_port pogocache_port
        taskset -c "$SERVER_CPU" "$POGOCACHE" -h 127.0.0.1 -p "$pogocache_port" --threads 1 \
            >"$tmp/pogocache.$1.out" 2>&1 &
        pogocache_pid=$!
        pids+=("$pogocache_pid")
        if wait_until 10 pogo_ready "$pogocache_port"; then
            srv_pids[pogocache]=$pogocache_pid
            return 0
        fi
        stop_pid "$pogocache_pid"
    done
    cat "$tmp/pogocache.$1.out" >&2
    die "pogocache did not start"
}

# resp_fill PORT COUNT: SET key:%012d v%031d for COUNT keys (and user42 Alice)
# over the Redis protocol, with redis-cli --pipe.
resp_fill() {
    local out
    out=$(awk -v n="$2" 'BEGIN {
        printf "*3\r\n$3\r\nSET\r\n$6\r\nuser42\r\n$5\r\nAlice\r\n"
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\nv%031d\r\n", i, i
    }' | timeout 120 redis-cli -h 127.0.0.1 -p "$1" --pipe 2>&1) || { echo "$out" >&2; return 1; }
    [[ $out == *"errors: 0, replies: $(($2 + 1))"* ]] || { echo "$out" >&2; return 1; }
}

# -------------------------------------------------------------- one run ---

# load_cmd WORKLOAD SERVER SECONDS: sets cmd (the load generator's command
# line) and parser (wrk, h2load, redis or memcaslap).
declare -A rb_rate=() # redis-benchmark's last req/s per workload, to size -n
load_cmd() {
    local w=$1 s=$2 secs=$3 conns=64 base style path script=()
    case $s in
    cachette | cachette-json) base="http://127.0.0.1:$cachette_port" ;;
    gin-syncmap) base="http://127.0.0.1:$gin_syncmap_port" ;;
    gin-mutexmap) base="http://127.0.0.1:$gin_mutexmap_port" ;;
    webdis) base="http://127.0.0.1:$webdis_port" ;;
    nginx) base="http://127.0.0.1:$nginx_port" ;;
    pogocache) base="http://127.0.0.1:$pogocache_port" ;;
    esac
    case $s in
    cachette) case $w in get1k | set1k | get64k | set64k) style=raw ;; *) style=json ;; esac ;;
    cachette-json | gin-*) style=json ;;
    webdis) style=webdis ;;
    pogocache) style=pogo ;;
    nginx) style=nginx ;;
    esac
    parser=wrk
    case $s:$w in
    redis-benchmark:*)
        local test="get"
        [ "$w" = set ] && test="set"
        local n=$(((${rb_rate[$w]:-50000}) * secs))
        ((n >= 20000)) || n=20000
        cmd=(redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 64 -n "$n" -r "$KEYS" -d 32 -P 1 -t "$test" --csv)
        parser=redis
        return
        ;;
    memcaslap:*)
        cmd=("$memcaslap_bin" -s "127.0.0.1:$memcached_port" -T 1 -c 64 -t "${secs}s" -S "${secs}s"
            -F "$tmp/memcaslap.cfg" -w 2k)
        parser=memcaslap
        return
        ;;
    *:get1h2)
        cmd=(h2load -c 1 -m 64 -t 1 -D "$secs" "$base/cache/user42")
        parser=h2load
        return
        ;;
    esac
    case $w in
    get1 | get1c1)
        [ "$w" = get1c1 ] && conns=1
        case $style in json | nginx) path=/cache/user42 ;; webdis) path=/GET/user42 ;; pogo) path=/user42 ;; esac
        ;;
    get1k | get64k)
        local b=blob1k
        [ "$w" = get64k ] && b=blob64k
        case $s in
        cachette) path="/cache/$b?raw" ;;
        cachette-json) path="/cache/${b}j" ;;
        gin-*) path="/cache/$b" ;;
        webdis) path="/GET/$b.txt" ;;
        pogocache) path="/$b" ;;
        esac
        ;;
    getU) script=(-s "$here/workload.lua" "$base" -- "$style" get uniform "$KEYS") ;;
    getZ) script=(-s "$here/workload.lua" "$base" -- "$style" get zipf "$KEYS") ;;
    set) script=(-s "$here/workload.lua" "$base" -- "$style" set uniform "$KEYS") ;;
    mix) script=(-s "$here/workload.lua" "$base" -- "$style" mix uniform "$KEYS" 0 10) ;;
    set1k) script=(-s "$here/workload.lua" "$base" -- "$style" set uniform "$SET1K_KEYS" 1024) ;;
    set64k) script=(-s "$here/workload.lua" "$base" -- "$style" set uniform "$SET64K_KEYS" 65536) ;;
    esac
    cmd=(wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s --latency)
    if ((${#script[@]})); then cmd+=("${script[@]}"); else cmd+=("$base$path"); fi
}

# parse_out PARSER FILE: prints "requests req/s p99_ms errors" (p99 "-" when
# the tool gives none; "<=X" when only a bucket bound is known).
parse_out() {
    case $1 in
    wrk)
        awk '
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            p99 = (unit == "us") ? v / 1000 : (unit == "ms") ? v : (unit == "s") ? v * 1000 : (unit == "m") ? v * 60000 : -1
        }
        /^  Non-2xx or 3xx responses:/ { err += $NF }
        /^  Socket errors:/ { for (i = 3; i <= NF; i += 2) { x = $(i + 1); sub(/,/, "", x); err += x } }
        END { printf "%d %.0f %.3f %d\n", req, rps, p99, err }' "$2"
        ;;
    h2load)
        awk '
        /^finished in/ { rps = $4 }
        /^requests:/ { req = $8; err = $10 + $12 + $14 }
        /^status codes:/ { err += $7 + $9 }
        END { printf "%d %.0f - %d\n", req, rps, err }' "$2"
        ;;
    redis)
        awk -F, -v n="${cmd[8]}" '
        $1 ~ /^"(GET|SET)"$/ { gsub(/"/, ""); rps = $2; p99 = $7 }
        END { printf "%d %.0f %.3f 0\n", (rps > 0) ? n : 0, rps, p99 }' "$2"
        ;;
    memcaslap)
        # The p99 from the log2 latency histogram of "Total Statistics": the
        # upper bound of the bucket that holds it.
        tr -d '\033' <"$2" | awk '
        /^Total Statistics \(/ { tot = 1; next }
        tot && /^ +[0-9]+:/ { k = $1 + 0; for (i = 2; i <= NF; i++) { cnt[k + i - 2] += $i; total += $i; if (k + i - 2 > maxb) maxb = k + i - 2 } }
        tot && /^$/ { tot = 0 }
        /^cmd_get:/ { } /^get_misses:/ { miss = $2 }
        /^Run time:/ { ops = $5; tps = $7 }
        END {
            p = "-"
            if (total > 0) { acc = 0; for (b = 0; b <= maxb; b++) { acc += cnt[b]; if (acc >= 0.99 * total) { p = sprintf("<=%.3f", 2 ^ (b + 1) / 1000); break } } }
            printf "%d %.0f %s %d\n", ops, tps, p, miss
        }'
        ;;
    esac
}

# run_one WORKLOAD SERVER SECONDS: one run; sets r_* with its figures.
run_one() {
    local w=$1 s=$2 secs=$3
    load_cmd "$w" "$s" "$secs"
    local -a spids
    read -ra spids <<<"${srv_pids[$s]:-${srv_pids[${s%-json}]}}"
    local pid
    for pid in "${spids[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "the $s server process $pid has exited before $w (its output is at the end of $raw)"
    done

    # shellcheck disable=SC2034 # filled and read through namerefs
    local -A pa=() pb=()
    snap_procs pa
    local srv_b srv_a cli_b cli_a ours_b ours_a rc=0
    local -a c0b c1b c0a c1a
    proc_ticks ours_b "${pids[@]}"
    proc_ticks srv_b "${spids[@]}"
    children_ticks cli_b
    cpu_busy c0b "$SERVER_CPU"
    cpu_busy c1b "$CLIENT_CPU"
    local t0=$EPOCHREALTIME
    job_to "$tmp/load.out" taskset -c "$CLIENT_CPU" timeout -k 5 $((secs * 3 + 30)) "${cmd[@]}" || rc=$?
    local t1=$EPOCHREALTIME
    cpu_busy c0a "$SERVER_CPU"
    cpu_busy c1a "$CLIENT_CPU"
    children_ticks cli_a
    proc_ticks srv_a "${spids[@]}"
    proc_ticks ours_a "${pids[@]}"
    snap_procs pb
    cp "$tmp/load.out" "$tmp/last.$w.$s.out"
    ((rc == 0)) || { tail -20 "$tmp/load.out" >&2; die "the load generator failed (exit $rc) on $w/$s: ${cmd[*]}"; }

    r_cpu0=$((c0a[0] - c0b[0]))
    r_cpu1=$((c1a[0] - c1b[0]))
    r_steal=$((c0a[1] - c0b[1] + c1a[1] - c1b[1]))
    r_server=$((srv_a - srv_b))
    r_client=$((cli_a - cli_b))
    r_elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    r_loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    read -r r_requests r_rps r_p99 r_errors < <(parse_out "$parser" "$tmp/load.out")
    ((r_requests > 0)) || { tail -20 "$tmp/load.out" >&2; die "no requests completed on $w/$s: ${cmd[*]}"; }
    [ "$parser" = redis ] && rb_rate[$w]=$r_rps

    r_cpu_us=$(awk -v t="$r_cpu0" -v hz="$hz" -v n="$r_requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    r_srv_us=$(awk -v t="$r_server" -v hz="$hz" -v n="$r_requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    r_busy0=$(awk -v t="$r_cpu0" -v hz="$hz" -v e="$r_elapsed" 'BEGIN { printf "%.0f", t * 100 / hz / e }')
    r_busy1=$(awk -v t="$r_cpu1" -v hz="$hz" -v e="$r_elapsed" 'BEGIN { printf "%.0f", t * 100 / hz / e }')
    # Noise: busy ticks of both cores not explained by our processes. Every
    # server started here counts as ours (an idle one still ticks a little).
    r_other=$((r_cpu0 + r_cpu1 - r_client - (ours_a - ours_b)))
    r_others=$(other_ticks=$r_other top_others pa pb $$ "${pids[@]}")
    r_noisy=$(awk -v o="$r_other" -v st="$r_steal" -v e="$r_elapsed" -v hz="$hz" -v pct="$NOISE_PCT" \
        'BEGIN { lim = e * hz * pct / 100; print (o > lim || st > lim) ? "NOISY" : "ok" }')
}

# ---------------------------------------------------------------- setup ---

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- src include Makefile 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes in src/include/Makefile"
fi
commit="$commit; binary $CACHETTE_BIN built $(date -u -r "$tmp/cachette" '+%Y-%m-%d %H:%M UTC')"
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
machine="$ncpu CPUs (nproc), ${cpu_model:-unknown CPU}, Linux $(uname -r)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
versions="cachette $("$tmp/cachette" --version 2>&1 | head -1 | awk '{ print $NF }'), $(go version | awk '{ print $3 }'),"
versions+=" gin $(dpkg-query -W -f='${Version}' golang-github-gin-gonic-gin-dev 2>/dev/null || echo '?'),"
versions+=" webdis $(dpkg-query -W -f='${Version}' webdis 2>/dev/null || echo '?'),"
versions+=" redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'),"
versions+=" nginx $(nginx -v 2>&1 | cut -d/ -f2), memcached $(memcached -V 2>&1 | awk '{ print $2 }'),"
versions+=" wrk $(wrk -v 2>&1 | head -1 | awk '{ print $2 }'), h2load $(h2load --version 2>&1 | awk '{ print $NF }')"
[ -n "$POGOCACHE" ] && versions+=", pogocache $("$POGOCACHE" --version 2>&1 | head -1 | awk '{ print $NF }')"

# Preflight: how much of the two cores do others use while we do nothing?
preflight_verdict

{
    echo "# cachette side-by-side benchmark, raw figures"
    echo "command: $command_line"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $machine"
    echo "commit: $commit"
    echo "versions: $versions"
    echo "duration ${DURATION}s, warm-up ${WARMUP}s, rounds $ROUNDS, keys $KEYS, CLK_TCK $hz, noise limit ${NOISE_PCT}% of a core"
    echo "preflight: $quiet_line"
    echo
    echo "# cpu0/cpu1: busy ticks of the cores; server: the row's server processes; client: the load generator (+ this shell);"
    echo "# other: cpu0 + cpu1 - client - every process started here; cpu_us/r: cpu0 busy per request;"
    echo "# srv_us/r: the server processes' own utime+stime per request; busy0/busy1: the cores' busy percent"
    printf '%-6s %-7s %-16s %9s %10s %9s %9s %9s %5s %5s %7s %6s %6s %6s %6s %6s %5s %6s %-7s %-14s %s\n' \
        round load server req/s requests p99_ms cpu_us/r srv_us/r busy0 busy1 elapsed cpu0 cpu1 server client other steal errors verdict loadavg top_others
} >"$raw"

say "starting the servers"
[ -n "${need[cachette]:-}" ] && start_cachette main
for g in gin-syncmap gin-mutexmap; do
    if [ -n "${need[$g]:-}" ]; then
        start_gin "$g" main
        printf -v "${g//-/_}_port" '%s' "$gin_port"
    fi
done
[ -n "${need[webdis]:-}" ] && start_webdis
[ -n "${need[nginx]:-}" ] && start_nginx
if [ -n "${need[memcached]:-}" ]; then
    start_memcached main
    printf 'key\n16 16 1\nvalue\n32 32 1\ncmd\n0 0.1\n1 0.9\n' >"$tmp/memcaslap.cfg"
fi
[ -n "${need[pogocache]:-}" ] && start_pogocache main
for s in "${!srv_pids[@]}"; do say "  $s: pid ${srv_pids[$s]}"; done

say "preloading user42, $(thousands "$KEYS") keys and the 1 KiB and 64 KiB values"
c_put() { # c_put URL FILE [CONTENT_TYPE] [METHOD]
    curl -sf --max-time 10 -o /dev/null -X "${4:-PUT}" -H "Content-Type: ${3:-application/octet-stream}" \
        -H 'Expect:' --data-binary @"$2" "$1"
}
check_get() { # check_get URL EXPECTED_BODY
    local got
    got=$(curl -s --max-time 5 "$1") || die "GET $1 failed"
    [ "$got" = "$2" ] || die "GET $1 answered '${got:0:200}', expected '${2:0:200}'"
}
check_len() { # check_len URL BYTES
    local got
    got=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$1") || die "GET $1 failed"
    [ "$got" = "200 $2" ] || die "GET $1 answered $got, expected 200 with $2 bytes"
}
printf '{"key":"user42","value":"Alice"}' >"$tmp/user42.json"
k_probe=$((KEYS / 2))
v_probe=$(printf 'v%031d' "$k_probe")
k_probe=$(printf 'key:%012d' "$k_probe")
if [ -n "${need[cachette]:-}" ]; then
    u="http://127.0.0.1:$cachette_port"
    c_put "$u/cache" "$tmp/user42.json" application/json POST || die "preloading cachette failed"
    job taskset -c "$CLIENT_CPU" "$tmp/load" "$cachette_port" "$KEYS" >&2 || die "preloading cachette failed"
    for n in 1024 65536; do
        b=blob$((n / 1024))k
        c_put "$u/cache/$b" "$tmp/v$n" || die "preloading cachette's $b failed"
        json_body "${b}j" "$tmp/v$n" >"$tmp/$b.j.json"
        c_put "$u/cache" "$tmp/$b.j.json" application/json POST || die "preloading cachette's ${b}j failed"
        check_len "$u/cache/$b?raw" "$n"
    done
    check_get "$u/cache/user42" '{"key":"user42","value":"Alice"}'
    check_get "$u/cache/$k_probe" "{\"key\":\"$k_probe\",\"value\":\"$v_probe\"}"
fi
for g in gin-syncmap gin-mutexmap; do
    [ -n "${need[$g]:-}" ] || continue
    p=${g//-/_}_port
    u="http://127.0.0.1:${!p}"
    c_put "$u/cache" "$tmp/user42.json" application/json POST || die "preloading $g failed"
    job taskset -c "$CLIENT_CPU" "$tmp/load" "${!p}" "$KEYS" >&2 || die "preloading $g failed"
    for n in 1024 65536; do
        b=blob$((n / 1024))k
        json_body "$b" "$tmp/v$n" >"$tmp/$b.json"
        c_put "$u/cache" "$tmp/$b.json" application/json POST || die "preloading $g's $b failed"
    done
    check_get "$u/cache/user42" '{"key":"user42","value":"Alice"}'
    check_get "$u/cache/$k_probe" "{\"key\":\"$k_probe\",\"value\":\"$v_probe\"}"
done
if [ -n "${need[webdis]:-}" ]; then
    u="http://127.0.0.1:$webdis_port"
    resp_fill "$redis_port" "$KEYS" || die "preloading redis failed"
    for n in 1024 65536; do
        b=blob$((n / 1024))k
        c_put "$u/SET/$b" "$tmp/v$n" || die "preloading webdis's $b failed"
        check_len "$u/GET/$b.txt" "$n"
    done
    check_get "$u/GET/user42" '{"GET":"Alice"}'
    check_get "$u/GET/$k_probe" "{\"GET\":\"$v_probe\"}"
fi
if [ -n "${need[nginx]:-}" ]; then
    check_get "http://127.0.0.1:$nginx_port/cache/user42" '{"key":"user42","value":"Alice"}'
fi
if [ -n "${need[pogocache]:-}" ]; then
    u="http://127.0.0.1:$pogocache_port"
    resp_fill "$pogocache_port" "$KEYS" || die "preloading pogocache (Redis protocol) failed"
    for n in 1024 65536; do
        b=blob$((n / 1024))k
        c_put "$u/$b" "$tmp/v$n" || die "preloading pogocache's $b failed"
        check_len "$u/$b" "$n"
    done
    check_get "$u/user42" Alice
    check_get "$u/$k_probe" "$v_probe"
fi

# ------------------------------------------------------------------ runs ---

declare -A rps=() p99=() cpu=() busy0=() busy1=() noisy=() errs=() load_cmds=()
record() { # record ROUND WORKLOAD SERVER
    printf '%-6s %-7s %-16s %9s %10s %9s %9s %9s %5s %5s %7s %6s %6s %6s %6s %6s %5s %6s %-7s %-14s %s\n' \
        "$1" "$2" "$3" "$r_rps" "$r_requests" "$r_p99" "$r_cpu_us" "$r_srv_us" "$r_busy0" "$r_busy1" "$r_elapsed" \
        "$r_cpu0" "$r_cpu1" "$r_server" "$r_client" "$r_other" "$r_steal" "$r_errors" "$r_noisy" \
        "${r_loadavg// /,}" "${r_others:--}" >>"$raw"
}

t_start=$SECONDS
if ((WARMUP > 0)); then
    say "warm-up: ${WARMUP}s per row"
    for r in "${runs[@]}"; do
        run_one "${r%%:*}" "${r#*:}" "$WARMUP"
        record warmup "${r%%:*}" "${r#*:}"
    done
fi

for ((round = 1; round <= ROUNDS; round++)); do
    for r in "${runs[@]}"; do
        w=${r%%:*} s=${r#*:}
        say "round $round/$ROUNDS: $w $s (${DURATION}s; $((SECONDS - t_start))s in)"
        run_one "$w" "$s" "$DURATION"
        record "$round" "$w" "$s"
        load_cmds[$r]="${cmd[*]}"
        rps[$r]+="$r_rps "
        [[ $r_p99 == - ]] || p99[$r]+="${r_p99#<=} "
        cpu[$r]+="$r_cpu_us "
        busy0[$r]+="$r_busy0 "
        busy1[$r]+="$r_busy1 "
        [[ $r_noisy == ok ]] || noisy[$r]=$((${noisy[$r]:-0} + 1))
        ((r_errors == 0)) || errs[$r]=$((${errs[$r]:-0} + 1))
        say "  $r_rps req/s, p99 ${r_p99} ms, ${r_cpu_us} CPU-us/req, cores ${r_busy0}/${r_busy1}%, $r_noisy${r_others:+ (others: $r_others)}"
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo
    echo "# the load generator's command per row (last round; ports and paths of this run)"
    for r in "${runs[@]}"; do echo "load: $r: ${load_cmds[$r]}"; done
    echo
} >>"$raw"

for pid in "${pids[@]:1}"; do stop_pid "$pid"; done # all but the watchdog
pids=("${pids[0]}")

# ---------------------------------------------------------------- memory ---

declare -A mem_rss=() mem_empty=() mem_note=()
mem_servers=()
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
if ((MEM_ENTRIES > 0)); then
    mem_servers=(cachette gin-syncmap gin-mutexmap redis memcached)
    [ -n "$POGOCACHE" ] && mem_servers+=(pogocache)
    for m in "${mem_servers[@]}"; do
        say "memory: a fresh $m, loading $(thousands "$MEM_ENTRIES") entries"
        case $m in
        cachette)
            start_cachette mem
            mem_empty[$m]=$(rss_kb "$cachette_pid")
            job_to "$tmp/fill.out" taskset -c "$CLIENT_CPU" "$tmp/load" "$cachette_port" "$MEM_ENTRIES" ||
                die "loading cachette failed"
            stats=$(curl -sf --max-time 5 "http://127.0.0.1:$cachette_port/stats") || die "GET /stats failed"
            mem_rss[$m]=$(rss_kb "$cachette_pid")
            n=$(sed -n 's/.*"entries":\([0-9]*\).*/\1/p' <<<"$stats")
            mem_note[$m]="/stats: entries $n, bytes_used $(sed -n 's/.*"bytes_used":\([0-9]*\).*/\1/p' <<<"$stats")"
            [ "$n" = "$MEM_ENTRIES" ] || die "cachette holds $n entries, not $MEM_ENTRIES"
            mem_pid=$cachette_pid
            ;;
        gin-*)
            start_gin "$m" mem
            mem_empty[$m]=$(rss_kb "$gin_pid")
            job_to "$tmp/fill.out" taskset -c "$CLIENT_CPU" "$tmp/load" "$gin_port" "$MEM_ENTRIES" ||
                die "loading $m failed"
            check_get "http://127.0.0.1:$gin_port/cache/key:$(printf '%012d' $((MEM_ENTRIES - 1)))" \
                "{\"key\":\"key:$(printf '%012d' $((MEM_ENTRIES - 1)))\",\"value\":\"v$(printf '%031d' $((MEM_ENTRIES - 1)))\"}"
            mem_rss[$m]=$(rss_kb "$gin_pid")
            mem_note[$m]="GOMAXPROCS 1, default GOGC: RSS includes garbage not yet collected"
            mem_pid=$gin_pid
            ;;
        redis)
            start_redis mem
            mem_empty[$m]=$(rss_kb "$redis_pid")
            resp_fill "$redis_port" "$MEM_ENTRIES" || die "loading redis failed"
            n=$(redis-cli -h 127.0.0.1 -p "$redis_port" dbsize)
            mem_rss[$m]=$(rss_kb "$redis_pid")
            mem_note[$m]="dbsize $n (+ user42), used_memory $(redis-cli -h 127.0.0.1 -p "$redis_port" info memory | tr -d '\r' | sed -n 's/^used_memory:\(.*\)/\1/p')"
            mem_pid=$redis_pid
            ;;
        memcached)
            start_memcached mem
            mem_empty[$m]=$(rss_kb "$memcached_pid")
            # shellcheck disable=SC2016 # expanded by the inner bash
            job timeout 120 taskset -c "$CLIENT_CPU" bash -c 'exec 3>"/dev/tcp/127.0.0.1/$0"
                awk -v n="$1" '"'"'BEGIN { for (i = 0; i < n; i++) printf "set key:%012d 0 0 32 noreply\r\nv%031d\r\n", i, i }'"'"' >&3' \
                "$memcached_port" "$MEM_ENTRIES" || die "loading memcached failed"
            mc_full() { [ "$(mc_stat "$memcached_port" curr_items)" = "$MEM_ENTRIES" ]; }
            wait_until 60 mc_full || die "memcached holds $(mc_stat "$memcached_port" curr_items) items, not $MEM_ENTRIES"
            mem_rss[$m]=$(rss_kb "$memcached_pid")
            mem_note[$m]="curr_items $(mc_stat "$memcached_port" curr_items), bytes $(mc_stat "$memcached_port" bytes), -m 4096 (slabs allocated on demand)"
            mem_pid=$memcached_pid
            ;;
        pogocache)
            start_pogocache mem
            mem_empty[$m]=$(rss_kb "$pogocache_pid")
            if resp_fill "$pogocache_port" "$MEM_ENTRIES"; then
                mem_rss[$m]=$(rss_kb "$pogocache_pid")
            else
                say "  loading pogocache over the Redis protocol failed; no memory figure for it"
            fi
            mem_pid=$pogocache_pid
            ;;
        esac
        say "  VmRSS ${mem_rss[$m]:-?} kB (empty ${mem_empty[$m]} kB) ${mem_note[$m]:-}"
        echo "memory: $m entries $MEM_ENTRIES VmRSS_empty_kB ${mem_empty[$m]} VmRSS_kB ${mem_rss[$m]:-?} ${mem_note[$m]:-}" >>"$raw"
        stop_pid "$mem_pid"
    done
fi

# ----------------------------------------------------------------- table ---

# The cachette row a peer's row compares with: cachette's JSON row for the
# Gin peers where there is one, cachette's row otherwise.
ref_of() { # ref_of WORKLOAD SERVER
    if [[ $2 == gin-* && " ${wl_servers[$1]} " == *" cachette-json "* ]]; then
        echo "$1:cachette-json"
    else
        echo "$1:cachette"
    fi
}

# goal_of WORKLOAD SERVER: "RPS_MIN CPU_MAX name" of issue 5's goal for the
# row, or nothing when it sets none.
goal_of() {
    case $2 in
    gin-syncmap | webdis) echo "2 0.5" ;;
    nginx) echo "0.9 1.15" ;;
    pogocache) case $1 in get1 | getU | set | get1k | set1k) echo "1 -" ;; esac ;;
    esac
}

fmt_int() { awk -v x="$1" 'BEGIN { s = sprintf("%d", x); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    print s out }'; }

declare -A m_rps=() m_p99=() m_cpu=() m_b0=() m_b1=()
for r in "${runs[@]}"; do
    m_rps[$r]=$(median <<<"${rps[$r]}")
    m_p99[$r]=$(median <<<"${p99[$r]:-}")
    m_cpu[$r]=$(median <<<"${cpu[$r]}")
    m_b0[$r]=$(median <<<"${busy0[$r]}")
    m_b1[$r]=$(median <<<"${busy1[$r]}")
done

met=0 missed=0
{
    echo "### Side by side with the peers, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- Command: \`$command_line\`"
    echo "- Machine: $machine"
    echo "- Commit: $commit"
    echo "- Versions: $versions"
    echo "- Setup: every server on CPU $SERVER_CPU (cachette \`--threads 1\`; Gin peers GOMAXPROCS=1; Webdis 1 thread + redis-server;"
    echo "  nginx 1 worker; memcached \`-t 1\`), the load generator on CPU $CLIENT_CPU (\`wrk -t1 --latency\`, 64 connections unless"
    echo "  said; h2load \`-c 1 -m 64\`; redis-benchmark and memcaslap \`-c 64\`, 1 thread, no pipelining). $ROUNDS interleaved"
    echo "  round(s) of ${DURATION} s after a ${WARMUP} s warm-up; medians. CPU µs/req: busy time of CPU $SERVER_CPU (/proc/stat) per request."
    echo "  *cachette ÷ it*: cachette's median over the peer's (req/s: higher is better for cachette; CPU: lower is)."
    echo "  Where CPU $CLIENT_CPU (the load generator) was ≥${CLIENT_SAT}% busy in cachette's run, the CPU goal decides."
    echo "- Load average: $load_start at start, $load_end after the rounds. Preflight: $quiet_line."
    echo
    echo "| Workload | Server | req/s | p99 | CPU µs/req | CPU0/CPU1 busy | cachette ÷ it: req/s | cachette ÷ it: CPU µs | Goal | Noise |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
    for w in "${workloads[@]}"; do
        first=1
        # The best p99 among the HTTP peers of this workload, for cachette's row.
        best_p99="" best_name=""
        for s in ${wl_servers[$w]}; do
            case $s in cachette* | redis-benchmark | memcaslap) continue ;; esac
            v=${m_p99[$w:$s]}
            [ -n "$v" ] || continue
            if [ -z "$best_p99" ] || awk -v a="$v" -v b="$best_p99" 'BEGIN { exit !(a < b) }'; then
                best_p99=$v best_name=$(display "$s" "$w")
            fi
        done
        for s in ${wl_servers[$w]}; do
            r="$w:$s"
            label=""
            ((first)) && label=${wl_label[$w]}
            first=0
            p="n/a"
            if [ -n "${m_p99[$r]}" ]; then
                p=$(printf '%.2f ms' "${m_p99[$r]}")
                [ "$s" = memcaslap ] && p="≤$p"
            fi
            n=${noisy[$r]:-0}
            note="clean"
            ((n == 0)) || note="NOISY ($n of $ROUNDS)"
            ((${errs[$r]:-0} == 0)) || note+=", ERRORS in ${errs[$r]} runs"
            [ "$s" = pogocache ] && note+="; connection-bound: HTTP answers close the connection"
            [ "$s" = redis-benchmark ] && [ -z "${m_p99[$r]}" ] && p="n/a"
            if [[ $s == cachette* ]]; then
                rr="—" cr="—" goal="—"
                if [ "$w" = get1h2 ] && [ -n "${m_rps[get1:cachette]:-}" ]; then
                    goal=$(awk -v a="${m_rps[$r]}" -v b="${m_rps[get1:cachette]}" -v c="${m_cpu[$r]}" -v d="${m_cpu[get1:cachette]}" \
                        'BEGIN { printf "vs its HTTP/1.1 row: %.2fx req/s, %.2fx CPU µs", a / b, c / d }')
                    p="n/a (h2load)"
                elif [ "$w" != get1c1 ] && [ "$s" = cachette ] && [ -n "$best_p99" ] && [ -n "${m_p99[$r]}" ]; then
                    if awk -v a="${m_p99[$r]}" -v b="$best_p99" 'BEGIN { exit !(a <= b) }'; then
                        goal="p99 ≤ best peer's ($best_p99 ms, $best_name): met"
                        met=$((met + 1))
                    else
                        goal="p99 ≤ best peer's ($best_p99 ms, $best_name): **missed**"
                        missed=$((missed + 1))
                    fi
                fi
            else
                ref=$(ref_of "$w" "$s")
                rr=$(awk -v a="${m_rps[$ref]}" -v b="${m_rps[$r]}" 'BEGIN { printf "%.2fx", a / b }')
                cr=$(awk -v a="${m_cpu[$ref]}" -v b="${m_cpu[$r]}" 'BEGIN { printf "%.2fx", a / b }')
                read -r g_rps g_cpu < <(goal_of "$w" "$s") || true
                if [ -n "${g_rps:-}" ]; then
                    sat=$(awk -v b="${m_b1[$ref]}" -v t="$CLIENT_SAT" 'BEGIN { print (b >= t) ? 1 : 0 }')
                    goal=$(awk -v rr="${rr%x}" -v cr="${cr%x}" -v gr="$g_rps" -v gc="$g_cpu" -v sat="$sat" 'BEGIN {
                        want = sprintf("≥%sx req/s", gr); if (gc != "-") want = want sprintf(" or ≤%sx CPU", gc)
                        if (rr >= gr) print want ": met (req/s)"
                        else if (gc != "-" && sat && cr <= gc) print want ": met (CPU; load generator saturated)"
                        else print want ": **missed**" }')
                    if [[ $goal == *missed* ]]; then missed=$((missed + 1)); else met=$((met + 1)); fi
                else
                    case $s in
                    redis-benchmark | memcaslap) goal="context (native protocol)" ;;
                    *) goal="no goal (context)" ;;
                    esac
                fi
                g_rps="" g_cpu=""
            fi
            echo "| $label | $(display "$s" "$w") | $(fmt_int "${m_rps[$r]}") | $p | ${m_cpu[$r]} | ${m_b0[$r]}/${m_b1[$r]}% | $rr | $cr | $goal | $note |"
        done
    done
    echo
    echo "Goals: $met met, $missed missed."
    if ((${#mem_servers[@]})); then
        echo
        echo "Memory: each server started fresh and loaded with $(thousands "$MEM_ENTRIES") entries (16-byte keys, 32-byte values; cachette and"
        echo "the Gin peers by pipelined POSTs, redis by \`redis-cli --pipe\`, memcached by \`set … noreply\`)."
        echo
        echo "| Server | VmRSS | VmRSS empty | bytes/entry (RSS) | bytes/entry over empty | cachette ÷ it | Goal | Notes |"
        echo "|---|---:|---:|---:|---:|---:|---|---|"
        for m in "${mem_servers[@]}"; do
            [ -n "${mem_rss[$m]:-}" ] || { echo "| $m | n/a | ${mem_empty[$m]} kB | | | | | loading failed |"; continue; }
            ratio="—" goal="—"
            if [ "$m" != cachette ] && [ -n "${mem_rss[cachette]:-}" ]; then
                ratio=$(awk -v a="${mem_rss[cachette]}" -v b="${mem_rss[$m]}" 'BEGIN { printf "%.2fx", a / b }')
                case $m in
                redis | gin-syncmap)
                    if awk -v a="${mem_rss[cachette]}" -v b="${mem_rss[$m]}" 'BEGIN { exit !(a < b) }'; then
                        goal="fewer bytes/entry: met"
                        met=$((met + 1))
                    else
                        goal="fewer bytes/entry: **missed**"
                        missed=$((missed + 1))
                    fi
                    ;;
                esac
            fi
            awk -v m="$m" -v rss="${mem_rss[$m]}" -v e="${mem_empty[$m]}" -v n="$MEM_ENTRIES" -v ratio="$ratio" \
                -v goal="$goal" -v note="${mem_note[$m]:-}" 'BEGIN {
                printf "| %s | %.1f MB | %.1f MB | %.1f | %.1f | %s | %s | %s |\n",
                    m, rss * 1024 / 1e6, e * 1024 / 1e6, rss * 1024 / n, (rss - e) * 1024 / n, ratio, goal, note }'
        done
        echo
        echo "Goals with memory: $met met, $missed missed."
    fi
    echo
    echo "Rows a peer cannot do: nginx answers one fixed body, so it has GET-one-key rows only; Webdis takes"
    echo "values over 32 bytes as a PUT body (\`PUT /SET/k\`), since a 64 KiB value does not fit in its URL form;"
    echo "the Gin peers have JSON only (no raw values). HTTP/2: cachette only (h2load gives no p99)."
    echo "memcaslap's p99 is the upper bound of its log2 latency bucket. To keep the default run near 25 minutes,"
    echo "1-connection rows are GET of one key only, and gin-mutexmap runs get1, getU and set only."
    echo
    echo "Raw per-run figures: \`$raw\`."
} >"$tmp/table.md"

{ echo; cat "$tmp/table.md"; } >>"$raw"
cat "$tmp/table.md"

if ((run_resp)); then
    # resp.sh bounds its own time: this script's watchdog stops here.
    stop_pid "${pids[0]}"
    pids=()
    echo
    job taskset -c "$SERVER_CPU,$CLIENT_CPU" "$here/resp.sh" # this shell is pinned to one
fi
