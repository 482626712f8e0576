# shellcheck shell=bash disable=SC2154 # $hz, $tmp and the run's identity come from the sourcing script
# Measurement helpers shared by bench/http/run.sh, bench/peers/run.sh,
# bench/persist/run.sh and bench/cluster/run.sh,
# sourced, not run: busy ticks of a core from /proc/stat, CPU time of
# processes from /proc/PID/stat, of waited-for children from `times`, and
# snapshots of every process to name who else took CPU during a run.
# Messages are prefixed with $BENCH_NAME.
#
# The functions used inside a run's measuring window use builtins only and set
# variables rather than print: no process is forked in the window but the load
# generator, and `times` must run in the benchmark's shell, not in a $(...)
# subshell. They need $hz (CLK_TCK) and $tmp (a scratch directory) set.

die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }
say() { echo "${BENCH_NAME:-bench}: $*" >&2; }

# bench_command SCRIPT TARGET VAR...: sets command_line, the command that
# repeats this run: each VAR set in the environment as VAR=value, then
# SCRIPT; under make, prefixed with "make TARGET, which runs: ".
bench_command() {
    local script=$1 target=$2 v
    shift 2
    command_line=""
    for v in "$@"; do
        if [ -n "${!v:-}" ]; then command_line+="$v=${!v} "; fi
    done
    command_line+=$script
    [ -z "${MAKELEVEL:-}" ] || command_line="make $target, which runs: $command_line"
}

# bench_params SCRIPT TARGET "NAME DEFAULT [MIN MAX [UNIT]]"...: sets
# command_line (bench_command, from the NAMEs), then each NAME to DEFAULT
# where the environment leaves it unset or empty; a NAME with MIN and MAX
# must be a whole number in MIN..MAX (UNIT, e.g. "seconds", for the
# message), or the run dies saying so. One row per setting, so its default
# and its bounds cannot drift apart.
bench_params() {
    local script=$1 target=$2 row name def min max unit
    local -a names=()
    shift 2
    for row in "$@"; do names+=("${row%% *}"); done
    bench_command "$script" "$target" "${names[@]}"
    for row in "$@"; do
        read -r name def min max unit <<<"$row"
        [ -n "${!name:-}" ] || printf -v "$name" '%s' "$def"
        [ -n "$max" ] || continue
        [[ ${!name} =~ ^[0-9]+$ ]] && ((${!name} >= min && ${!name} <= max)) ||
            die "$name must be a whole number in $min..$max${unit:+ $unit}, not '${!name}'"
    done
}

# bench_raw_header SCRIPT: starts $raw with the run's identity: SCRIPT and
# $stamp, then $command_line, $machine, $commit, $versions and the load
# average now.
bench_raw_header() {
    {
        echo "# $1, $stamp"
        echo "command: $command_line"
        echo "machine: $machine"
        echo "commit: $commit"
        echo "versions: $versions"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$raw"
}

# wait_banner FILE PID REGEX VAR: VAR = the port printed in FILE by PID (the
# \1 of the sed REGEX), within 10 s; false if PID exits or 10 s pass first.
wait_banner() {
    local -n _p=$4
    local i
    for ((i = 0; i < 200; i++)); do
        _p=$(sed -n "s|$3|\\1|p" "$1" | head -1)
        [ -n "$_p" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Checks for two CPUs (what for: the message's end), then sets ncpu, hz,
# stamp, raw (bench/results/PREFIX<stamp>.txt) and tmp (a fresh directory
# named for NAME).
#   bench_files PREFIX NAME "server on CPU 0, wrk on CPU 1"
bench_files() {
    ncpu=$(getconf _NPROCESSORS_ONLN)
    ((ncpu >= 2 && $(nproc) >= 2)) || die "needs 2 CPUs ($3)"
    hz=$(getconf CLK_TCK)
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p bench/results
    # shellcheck disable=SC2034 # the calling script's
    raw="bench/results/$1$stamp.txt"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachette-$2.XXXXXX")
}

# The end of a run, from its EXIT trap: stops PIDS; if the run failed,
# appends the last 20 lines of each non-empty file matching LOGS (globs
# under $tmp, one string) to $raw for the post-mortem; removes $tmp; exits
# with the run's status RC.
#   finish_run RC LOGS PIDS...
finish_run() {
    local rc=$1 logs=$2 pid glob f
    shift 2
    for pid in "$@"; do stop_pid "$pid"; done
    if ((rc != 0)) && [ -n "$logs" ] && [ -f "$raw" ]; then
        for glob in $logs; do
            for f in "$tmp"/$glob; do
                [ -s "$f" ] || continue
                printf '\n# tail of %s\n' "${f#"$tmp"/}"
                tail -20 "$f"
            done
        done >>"$raw" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    ((rc == 0)) || say "stopped (exit $rc); partial results, if any, in $raw"
    exit "$rc"
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cpu_busy VAR N: VAR=(busy steal), the ticks of cpuN from /proc/stat, busy
# being user+nice+system+irq+softirq+steal.
cpu_busy() {
    local -n _out=$1
    local line
    while read -r line; do
        if [[ $line == "cpu$2 "* ]]; then
            local -a f
            read -ra f <<<"$line"
            _out=($((f[1] + f[2] + f[3] + f[6] + f[7] + f[8])) "${f[8]}")
            return
        fi
    done </proc/stat
    die "no cpu$2 in /proc/stat"
}

# proc_ticks VAR PID...: VAR = utime+stime of the processes (all their
# threads), summed.
proc_ticks() {
    local -n _sum=$1
    shift
    local pid line
    _sum=0
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        read -r line 2>/dev/null <"/proc/$pid/stat" || continue
        local -a f
        read -ra f <<<"${line##*) }"
        _sum=$((_sum + f[11] + f[12]))
    done
}

# children_ticks VAR: VAR = CPU time, in ticks, of this shell and of the
# children it has waited for (the load generators, through taskset and
# timeout), from the `times` builtin.
children_ticks() {
    local -n _ticks=$1
    times >"$tmp/times"
    local -a t
    mapfile -t t <"$tmp/times"
    local ms=0 part m s
    for part in ${t[0]} ${t[1]}; do # like 0m1.234s
        m=${part%%m*}
        s=${part#*m}
        s=${s%s}
        ms=$((ms + m * 60000 + 10#${s%.*} * 1000 + 10#${s#*.}))
    done
    _ticks=$((ms * hz / 1000))
}

# snap_procs NAME: NAME[pid]="ticks comm" for every process now.
snap_procs() {
    local -n _snap=$1
    _snap=()
    local f line pid comm
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${f#/proc/}
        pid=${pid%/stat}
        comm=${line#*(}
        comm=${comm%) *}
        local -a a
        read -ra a <<<"${line##*) }"
        _snap["$pid"]="$((a[11] + a[12])) ${comm// /_}"
    done
}

# top_others BEFORE AFTER OURS...: the three biggest CPU consumers between two
# snapshots that are not ours, as "comm(pid)=Nt ...", and, when it is at least
# 2 ticks, what the cores spent beyond ours and theirs ("unseen": processes
# that came and went between the snapshots, interrupts). The second needs
# $other_ticks, the cores' busy ticks beyond ours, when set.
top_others() {
    local -n _b=$1 _a=$2
    shift 2
    local pid d
    local -A ours=()
    for pid in "$@"; do ours[$pid]=1; done
    for pid in "${!_a[@]}"; do
        [ -n "${ours[$pid]:-}" ] && continue
        local -a now was
        read -ra now <<<"${_a[$pid]}"
        read -ra was <<<"${_b[$pid]:-0 x}"
        d=$((now[0] - was[0]))
        if ((d > 0)); then echo "$d ${now[1]}($pid)"; fi
    done | sort -rn | awk -v other="${other_ticks:-}" '
        { seen += $1; if (NR <= 3) out = out (NR > 1 ? " " : "") $2 "=" $1 "t" }
        END {
            if (other != "" && other - seen >= 2) out = out (out != "" ? " " : "") "unseen=" other - seen "t"
            print out
        }'
}

# preflight: sets quiet_pct, the percent of a core the processes not in
# $$ and pids took over one second while the benchmark did nothing, and
# quiet_top, the biggest of them (top_others). Needs $SERVER_CPU and
# $CLIENT_CPU, the two cores measured.
# shellcheck disable=SC2034 # quiet_pct and quiet_top are the caller's
preflight() {
    # shellcheck disable=SC2034 # filled and read through namerefs
    local -A qa=() qb=()
    local -a a0 a1 b0 b1
    snap_procs qa
    cpu_busy a0 "$SERVER_CPU"
    cpu_busy a1 "$CLIENT_CPU"
    sleep 1
    cpu_busy b0 "$SERVER_CPU"
    cpu_busy b1 "$CLIENT_CPU"
    snap_procs qb
    quiet_pct=$(((b0[0] - a0[0] + b1[0] - a1[0]) * 100 / hz))
    quiet_top=$(top_others qa qb $$ "${pids[@]}")
}

# preflight_verdict: preflight, then sets quiet_line, what it found (with
# $load_start, the load average), and says whether the machine is quiet: busier
# than $NOISE_PCT percent of a core, its runs are likely flagged NOISY.
# shellcheck disable=SC2034 # quiet_line is the caller's
preflight_verdict() {
    preflight
    quiet_line="others used ${quiet_pct}% of a core over 1 s before the run (loadavg $load_start; top: ${quiet_top:-none})"
    if ((quiet_pct > NOISE_PCT)); then
        say "WARNING: the machine is busy: $quiet_line; runs while it stays busy are flagged NOISY"
    else
        say "machine quiet: $quiet_line"
    fi
}

# start_watchdog SECONDS: a background process that sends this shell
# SIGTERM once SECONDS pass, so the whole run is bounded in time; its pid is
# appended to pids, and the caller's cleanup stops it.
start_watchdog() {
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$1" &
        sp=$!
        wait "$sp"
        echo "${BENCH_NAME:-bench}: over the time budget of ${1}s, stopping" >&2
        kill -TERM $$
    ) &
    pids+=($!)
}

# job CMD...: runs CMD in the background and waits for it, returning its
# status. A shell waiting on a foreground command runs its traps only when the
# command ends (and not at all for SIGINT when the command catches it, as wrk
# does); waiting with `wait` lets Ctrl-C or SIGTERM stop everything at once.
# The caller's cleanup stops $job_pid if it is still running.
job() {
    local rc=0
    "$@" &
    job_pid=$!
    wait "$job_pid" || rc=$?
    job_pid=""
    return "$rc"
}

# job_to FILE CMD...: job with CMD's stdout and stderr in FILE. Use it rather
# than `job CMD >FILE`: a trap that fires during the wait runs with the
# function's redirections, and the cleanup's messages would land in FILE.
job_to() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>&1 &
    job_pid=$!
    wait "$job_pid" || rc=$?
    job_pid=""
    return "$rc"
}

# port_free PORT: true when nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port VAR: VAR = a random loopback port that nothing listens on now.
pick_port() {
    local -n _port=$1
    local try p
    for ((try = 0; try < 50; try++)); do
        p=$((20000 + RANDOM % 40000))
        if port_free "$p"; then
            _port=$p
            return 0
        fi
    done
    die "no free loopback port found"
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; false
# when SECONDS pass first.
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 20; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# build_base REV DIR: builds build/cachette at commit REV in a new git
# worktree DIR (the caller removes it: git worktree remove --force DIR) and
# sets base_commit to REV's short name. Dies if REV is no commit or the build fails.
build_base() {
    base_commit=$(git rev-parse --short "$1") || die "BASE_REV=$1 is not a commit"
    say "building cachette at $base_commit"
    git worktree add --detach -q "$2" "$base_commit"
    make -C "$2" -j"$(nproc)" build/cachette >"$2.build.log" 2>&1 ||
        { cat "$2.build.log" >&2; die "building $base_commit failed"; }
}

# thousands 12345 -> 12,345
thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta' <<<"$1"; }

# median: the median of the numbers on stdin, separated by blanks; nothing
# when there are none.
median() {
    tr ' ' '\n' | awk 'NF' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
