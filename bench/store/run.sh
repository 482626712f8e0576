#!/usr/bin/env bash
# The store micro-benchmark (`make bench-store`): builds bench.c with the
# store's sources four ways (cachette's lock-free gets over sharded writer
# locks, the same with locked gets, one rwlock, one mutex: only the locking
# differs, see bench.c) and prints a Markdown table
# of operations per second by thread count, with cachette's scaling and its
# ratio to the single-mutex baseline.
#
#   THREADS=1,2,4,8 RUN_SECONDS=1 KEYS=1000000 ROUNDS=1 ONLY= bench/store/run.sh
#
# ROUNDS repeats the four builds in turn (interleaved, so a noisy spell hits
# them alike) and each cell shows the median of its rounds; ONLY names one
# cell, e.g. ONLY=get90-set10/zipf0.99.
#
# Raw lines go to bench/results/store-<timestamp>.txt. RAW=<file> formats the
# raw lines of an earlier run (say, one made on a bigger machine) instead,
# with MACHINE=<description> naming where it ran. Each run is bounded by
# RUN_SECONDS; the whole script by about 3 x 8 x threads x RUN_SECONDS plus set-up.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

THREADS=${THREADS:-1,2,4,8}
SECONDS_PER_RUN=${RUN_SECONDS:-1}
KEYS=${KEYS:-1000000}
ROUNDS=${ROUNDS:-1}
ONLY=${ONLY:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
raw=bench/results/store-$(date -u +%Y%m%dT%H%M%SZ).txt

if [ -n "${RAW:-}" ]; then
    raw=$RAW
else
    flags=(-O2 -g -flto -std=gnu11 -Wall -Wextra -Werror -pthread -Iinclude -Isrc)
    cc "${flags[@]}" -o "$tmp/cachette" bench/store/bench.c src/store/*.c -lm
    cc "${flags[@]}" -DBENCH_IMPL='"sharded-rwlock"' -DSTORE_LOCKED_READS -o "$tmp/sharded" bench/store/bench.c \
        src/store/*.c -lm
    cc "${flags[@]}" -DBENCH_IMPL='"single-rwlock"' -DBENCH_SINGLE_SHARD -DSTORE_LOCKED_READS -o "$tmp/rwlock" \
        bench/store/bench.c src/store/*.c -lm
    cc "${flags[@]}" -DBENCH_IMPL='"single-mutex"' -DBENCH_SINGLE_SHARD -DSTORE_LOCKED_READS -DSTORE_SHARD_MUTEX \
        -o "$tmp/mutex" bench/store/bench.c src/store/*.c -lm
    for round in $(seq "$ROUNDS"); do
        for impl in cachette sharded rwlock mutex; do
            echo "round $round/$ROUNDS: $impl (threads $THREADS, ${SECONDS_PER_RUN} s per run, $KEYS keys)" >&2
            timeout 1800 "$tmp/$impl" "$THREADS" "$SECONDS_PER_RUN" "$KEYS" $ONLY | tee -a "$raw" >&2
        done
    done
fi

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
echo "### Store micro-benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- Command: \`THREADS=$THREADS RUN_SECONDS=$SECONDS_PER_RUN KEYS=$KEYS ROUNDS=$ROUNDS${ONLY:+ ONLY=$ONLY} bench/store/run.sh\`"
echo "- Machine: ${MACHINE:-$(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)}; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- Million operations per second (the median of $ROUNDS round(s) per cell); 16-byte keys, 32-byte values, all keys present."
echo
awk -v threads="$THREADS" '
    {
        key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
        runs[key, ++count[key]] = $5
        if (!(($2, $3) in seen)) { seen[$2, $3] = 1; order[++n] = $2 SUBSEP $3 }
    }
    END {
        # Each cell: the median of its rounds (insertion sort: a handful of values).
        for (key in count) {
            c = count[key]
            for (i = 1; i <= c; i++) v[i] = runs[key, i]
            for (i = 2; i <= c; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            ops[key] = c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
        }
        nt = split(threads, t, ",")
        two = (nt > 1) ? t[2] : t[1]
        printf "| workload | keys | impl |"
        for (i = 1; i <= nt; i++) printf " %s thr |", t[i]
        printf " %s/%s thr | vs mutex at %s thr |\n", two, t[1], two
        printf "|---|---|---|"
        for (i = 1; i <= nt; i++) printf "---:|"
        printf "---:|---:|\n"
        for (r = 1; r <= n; r++) {
            split(order[r], k, SUBSEP)
            split("cachette sharded-rwlock single-rwlock single-mutex", impls, " ")
            for (m = 1; m <= 4; m++) {
                printf "| %s | %s | %s |", k[1], k[2], impls[m]
                for (i = 1; i <= nt; i++) printf " %.2f |", ops[impls[m], k[1], k[2], t[i]] / 1e6
                one = ops[impls[m], k[1], k[2], t[1]]
                printf " %.2fx |", one ? ops[impls[m], k[1], k[2], two] / one : 0
                mx = ops["single-mutex", k[1], k[2], two]
                printf " %s |\n", m == 1 && mx ? sprintf("%.2fx", ops["cachette", k[1], k[2], two] / mx) : ""
            }
        }
    }' "$raw"
echo
echo "Raw figures: \`$raw\`."
