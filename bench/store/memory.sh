#!/usr/bin/env bash
# The store memory benchmarks: bytes per entry, --max-memory honoured, and
# reclamation of a mass expiry (bench/store/memory.c, bench/store/expiry.c).
# Builds both with the store's sources, runs each measurement in its own
# process and prints Markdown tables.
#
#   N=1000000 MAX_MEMORY_MIB=64 WRITERS="1 2 4" REPEAT=3 bench/store/memory.sh
#
# N: entries for bytes per entry and for the expiry run. MAX_MEMORY_MIB: the
# store's bound in the max-memory runs, each of which writes ten times that
# with SIEVE and S3-FIFO, once per writer-thread count in WRITERS, plus one
# run with the largest count under MALLOC_ARENA_MAX=1 (one glibc arena) to
# show how much of any excess is per-thread arenas (none since entries live in
# the store's own slabs: what glibc still holds is tables and ghosts, so the
# two rows match). EVERY: RSS sample period
# in writes. REPEAT (3): expiry runs, each a sweeper run then a control run
# of the same window, for a median of the reader's p99 ratio. The machine is
# shared: if the 1-minute load average exceeds LOAD_MAX (0.5) the script waits
# LOAD_WAIT seconds (10), up to LOAD_TRIES times (6), then measures anyway and
# says so. The whole run takes about 40 s plus any wait (at most a minute);
# every binary runs under `timeout`. No server is started.
#
# Raw lines go to bench/results/memory-<timestamp>.txt; RAW=<file> formats an
# earlier run instead (MACHINE=<description> names where it ran).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

N=${N:-1000000}
MAX_MEMORY_MIB=${MAX_MEMORY_MIB:-64}
WRITERS=${WRITERS:-1 2 4}
EVERY=${EVERY:-1000}
LOAD_MAX=${LOAD_MAX:-0.5}
LOAD_TRIES=${LOAD_TRIES:-6}
LOAD_WAIT=${LOAD_WAIT:-10}
REPEAT=${REPEAT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command="N=$N MAX_MEMORY_MIB=$MAX_MEMORY_MIB WRITERS=\"$WRITERS\" REPEAT=$REPEAT bench/store/memory.sh"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
above() { awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$LOAD_MAX" 'BEGIN { exit !(l > m) }'; }

if [ -n "${RAW:-}" ]; then
    raw=$RAW
else
    mkdir -p bench/results
    raw=bench/results/memory-$(date -u +%Y%m%dT%H%M%SZ).txt
    flags=(-O2 -g -std=gnu11 -Wall -Wextra -Werror -pthread -Iinclude -Isrc)
    cc "${flags[@]}" -o "$tmp/memory" bench/store/memory.c src/store/*.c -lm
    cc "${flags[@]}" -o "$tmp/expiry" bench/store/expiry.c src/sweeper.c src/log.c src/store/*.c -lm

    load_start=$(loadavg)
    tries=0
    while above && [ "$tries" -lt "$LOAD_TRIES" ]; do
        tries=$((tries + 1))
        echo "load average $(loadavg) above $LOAD_MAX: waiting ${LOAD_WAIT}s ($tries/$LOAD_TRIES)" >&2
        sleep "$LOAD_WAIT"
    done
    load_measure=$(loadavg)
    busy=$(above && echo "yes" || echo "no")
    cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
    dirty=$(git status --porcelain -- src/store include/cachette 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
    {
        echo "# command: $command"
        echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "# machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), glibc $(ldd --version | head -1 | awk '{print $NF}')"
        echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
        echo "# load: at start $load_start; when measuring began $load_measure (after $tries waits; still above $LOAD_MAX: $busy)"
    } >"$raw"

    echo "bytes per entry ($N entries)" >&2
    timeout 120 "$tmp/memory" entries "$N" >>"$raw"
    max_writers=$(echo "$WRITERS" | tr ' ' '\n' | sort -n | tail -1)
    for policy in sieve s3fifo; do
        for w in $WRITERS; do
            echo "max-memory $MAX_MEMORY_MIB MiB, $policy, $w writers" >&2
            timeout 120 "$tmp/memory" bound "$MAX_MEMORY_MIB" "$policy" "$EVERY" "$w" | sed 's/^/arenas=default /' >>"$raw"
        done
        echo "max-memory $MAX_MEMORY_MIB MiB, $policy, $max_writers writers, MALLOC_ARENA_MAX=1" >&2
        MALLOC_ARENA_MAX=1 timeout 120 "$tmp/memory" bound "$MAX_MEMORY_MIB" "$policy" "$EVERY" "$max_writers" |
            sed 's/^/arenas=1 /' >>"$raw"
    done
    for rep in $(seq 1 "$REPEAT"); do
        echo "expiry of $N keys, with the sweeper ($rep/$REPEAT)" >&2
        timeout 120 "$tmp/expiry" sweep "$N" | sed "s/^/rep=$rep /" >>"$raw"
        window=$(sed -n "s/^rep=$rep result mode=sweep .* window_ms=\([0-9-]*\) .*/\1/p" "$raw" | tail -1)
        echo "expiry of $N keys, control without the sweeper, window ${window:-?} ms ($rep/$REPEAT)" >&2
        timeout 120 "$tmp/expiry" control "$N" "${window:-0}" | sed "s/^/rep=$rep /" >>"$raw"
    done
    echo "# load at end: $(loadavg)" >>"$raw"
fi

header() { sed -n "s/^# $1: //p" "$raw" | head -1; }
echo "### Store memory, $(header date)"
echo
echo "- Command: \`$(header command)\`"
echo "- Machine: ${MACHINE:-$(header machine)}; commit $(header commit)"
echo "- Load average (1, 5, 15 min): $(header load); at end $(header 'load at end')"
echo
awk '
    function parse(line,    i, n, f, kv) {
        delete v
        n = split(line, f, " ")
        for (i = 1; i <= n; i++)
            if (split(f[i], kv, "=") == 2)
                v[kv[1]] = kv[2]
    }
    function mib(b) { return sprintf("%.1f", b / 1048576) }
    function mb(b) { return sprintf("%.1f", b / 1e6) }
    /^mode=entries/ {
        parse($0)
        print "#### Bytes per entry (store alone, no HTTP)"
        print ""
        print "| entries | key | value | RSS before | RSS after | RSS growth / entry | bytes_used / entry |"
        print "|---:|---:|---:|---:|---:|---:|---:|"
        printf "| %d | %d B | %d B | %s MB | %s MB | %.1f B | %.1f B |\n", v["n"], v["key"], v["value"],
            mb(v["rss_before"]), mb(v["rss_after"]), v["rss_per_entry"], v["bytes_used_per_entry"]
        print ""
    }
    /^arenas=.* mode=bound/ {
        parse($0)
        if (!bound++) {
            print "#### --max-memory honoured: ten times the bound written, distinct keys, values 16 B-4 KiB log-uniform"
            print ""
            print "| policy | writers | glibc arenas | max_memory | base | peak RSS | limit (x1.15 + base) | within | over by | final RSS | after malloc_trim(0) | glibc free in heap | evicted | bytes_used <= max |"
            print "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
        }
        peak = v["hwm"] > v["peak"] ? v["hwm"] : v["peak"]
        printf "| %s | %d | %s | %s MiB | %s MiB | %s MiB | %s MiB | %s | %s MiB | %s MiB | %s MiB | %s MiB | %d | %s (%s MiB) |\n",
            v["policy"], v["threads"], v["arenas"], mib(v["max_memory"]), mib(v["base"]), mib(peak),
            mib(v["limit"]), v["peak_ok"], mib(v["over"]), mib(v["final"]), mib(v["trimmed"]), mib(v["m_free"]),
            v["evicted"], v["used_ok"], mib(v["bytes_used"])
    }
    /^rep=[0-9]+ result mode=/ {
        parse($0)
        k = v["rep"] SUBSEP v["mode"]
        res[k] = $0
        p99[k] = v["window_p99_ns"]
        if (v["rep"] > reps)
            reps = v["rep"]
    }
    /^rep=1 sample mode=sweep/ {
        parse($0)
        ns++
        st[ns] = v["t_ms"]; sl[ns] = v["entries_left"]; sb[ns] = v["bytes_used"]; sr[ns] = v["rss"]
    }
    END {
        if (bound)
            print ""
        if (!reps)
            exit
        split("sweep control", runs, " ")
        print "#### Expiry: 1-second TTL on every key, no reads of them, real clock"
        print ""
        print "| run | keys | load | window (after first TTL) | all reclaimed after last TTL | <=1% left after last TTL | entries at end | bytes_used loaded -> end | RSS before -> loaded -> end | after malloc_trim(0) |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        for (rep = 1; rep <= reps; rep++)
            for (r = 1; r <= 2; r++) {
                if (!((rep, runs[r]) in res))
                    continue
                parse(res[rep, runs[r]])
                printf "| %d: %s | %d | %d ms | %d-%d ms | %s | %s | %d | %s -> %s MB | %s -> %s -> %s MB | %s MB |\n", rep,
                    runs[r] == "sweep" ? "sweeper (src/sweeper.c, no trim)" : "control, no sweeper", v["n"], v["load_ms"],
                    v["window_start_ms"], v["window_ms"], v["reclaimed_all_after_last_ttl_ms"] < 0 ? "never" : v["reclaimed_all_after_last_ttl_ms"] " ms",
                    v["reclaimed_1pct_after_last_ttl_ms"] < 0 ? "never" : v["reclaimed_1pct_after_last_ttl_ms"] " ms",
                    v["entries_after"], mb(v["bytes_loaded"]), mb(v["bytes_after"]), mb(v["rss_before"]),
                    mb(v["rss_loaded"]), mb(v["rss_after"]), mb(v["rss_trimmed"])
            }
        print ""
        print "#### Reader latency during the mass expiry (one thread, store_get of 10,000 never-expiring keys)"
        print ""
        print "| run | phase | gets | p50 | p99 | p99.9 | max |"
        print "|---|---|---:|---:|---:|---:|---:|"
        split("idle window", phases, " ")
        nr = 0
        for (rep = 1; rep <= reps; rep++) {
            for (r = 1; r <= 2; r++) {
                if (!((rep, runs[r]) in res))
                    continue
                parse(res[rep, runs[r]])
                for (p = 1; p <= 2; p++) {
                    ph = phases[p]
                    if (v[ph "_gets"] == 0) {
                        # a load slower than the TTL leaves no time before it
                        printf "| %d: %s | %s | 0 | - | - | - | - |\n", rep, runs[r], ph == "idle" ? "before the TTL" : "expiry window"
                        continue
                    }
                    printf "| %d: %s | %s | %d | %d ns | %d ns | %d ns | %.2f ms |\n", rep, runs[r],
                        ph == "idle" ? "before the TTL" : "expiry window", v[ph "_gets"], v[ph "_p50_ns"],
                        v[ph "_p99_ns"], v[ph "_p999_ns"], v[ph "_max_ns"] / 1e6
                }
            }
            if (p99[rep, "control"] > 0)
                ratio[++nr] = p99[rep, "sweep"] / p99[rep, "control"]
        }
        # median of the per-repetition ratios (insertion sort: a handful of values)
        for (i = 2; i <= nr; i++)
            for (j = i; j > 1 && ratio[j - 1] > ratio[j]; j--) {
                t = ratio[j]; ratio[j] = ratio[j - 1]; ratio[j - 1] = t
            }
        med = nr == 0 ? 0 : (nr % 2 ? ratio[(nr + 1) / 2] : (ratio[nr / 2] + ratio[nr / 2 + 1]) / 2)
        list = ""
        for (i = 1; i <= nr; i++)
            list = list (i > 1 ? ", " : "") sprintf("%.2fx", ratio[i])
        parse(res[1, "sweep"])
        print ""
        printf "Reader p99 in the expiry window, sweeper / control: median %s of %d pairs (%s); goal <= 2x. ",
            nr ? sprintf("%.2fx", med) : "n/a", nr, list
        printf "Threads pinned: %s", v["pinned"]
        if (v["pinned"] == "yes")
            printf " (reader on CPU %d, sweeper and main thread on CPU %d)", v["reader_cpu"], v["sweeper_cpu"]
        print "."
        print ""
        print "Reclamation timeline of run 1 with the sweeper (t from the first TTL passing):"
        print ""
        print "| t | TTL entries left | bytes_used | RSS |"
        print "|---:|---:|---:|---:|"
        for (i = 1; i <= ns; i++)
            if (i % 2 == 0 || i == ns || i == 1)
                printf "| %d ms | %d | %s MB | %s MB |\n", st[i], sl[i], mb(sb[i]), mb(sr[i])
    }' "$raw"
echo
echo "Raw figures: \`$raw\`."
