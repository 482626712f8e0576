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
# cell, e.g. ONLY=get90-set10/zipf0.99. With several rounds, a last table
# gives cachette's ratios as medians of per-round ratios too: a round runs
# the builds back to back, so its ratios compare them in the same machine
# mode (this VM's speed moves in steps between rounds).
#
# BASE_REV=<commit> adds a fifth build to every round: cachette with the
# store's sources (src/store and the headers it includes) as committed there, named
# cachette@<commit>, to measure what a change costs or buys.
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
BASE_REV=${BASE_REV:-}
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
    builds=(cachette sharded rwlock mutex)
    if [ -n "$BASE_REV" ]; then
        base=$(git rev-parse --short "$BASE_REV")
        mkdir "$tmp/base"
        git archive "$base" src include | tar -x -C "$tmp/base"
        cc "${flags[@]/-Isrc/-I$tmp/base/src}" -I"$tmp/base/include" -DBENCH_IMPL="\"cachette@$base\"" \
            -o "$tmp/base-cachette" bench/store/bench.c "$tmp"/base/src/store/*.c -lm
        builds+=(base-cachette)
    fi
    for round in $(seq "$ROUNDS"); do
        for impl in "${builds[@]}"; do
            echo "round $round/$ROUNDS: $impl (threads $THREADS, ${SECONDS_PER_RUN} s per run, $KEYS keys)" >&2
            timeout 1800 "$tmp/$impl" "$THREADS" "$SECONDS_PER_RUN" "$KEYS" $ONLY | tee -a "$raw" >&2
        done
    done
fi

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
echo "### Store micro-benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- Command: \`THREADS=$THREADS RUN_SECONDS=$SECONDS_PER_RUN KEYS=$KEYS ROUNDS=$ROUNDS${ONLY:+ ONLY=$ONLY}${BASE_REV:+ BASE_REV=$BASE_REV} bench/store/run.sh\`"
echo "- Machine: ${MACHINE:-$(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)}; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- Million operations per second (the median of $ROUNDS round(s) per cell); 16-byte keys, 32-byte values, all keys present."
echo
awk -v threads="$THREADS" '
    # The median of v[1..c] (insertion sort: a handful of values).
    function median(v, c,   i, j, x) {
        for (i = 2; i <= c; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
        return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
    }
    # The median over rounds of a[i] / b[i], the i-th runs of two cells; "" without two rounds.
    function round_ratio(a, b,   i, c, v) {
        c = (count[a] < count[b]) ? count[a] : count[b]
        if (c < 2) return ""
        for (i = 1; i <= c; i++) v[i] = runs[b, i] ? runs[a, i] / runs[b, i] : 0
        return sprintf("%.2fx", median(v, c))
    }
    {
        key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
        runs[key, ++count[key]] = $5
        if (!(($2, $3) in seen)) { seen[$2, $3] = 1; order[++n] = $2 SUBSEP $3 }
        if ($1 ~ /^cachette@/) base = $1
    }
    END {
        for (key in count) {
            for (i = 1; i <= count[key]; i++) w[i] = runs[key, i]
            ops[key] = median(w, count[key])
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
            nimpl = split("cachette sharded-rwlock single-rwlock single-mutex" (base ? " " base : ""), impls, " ")
            for (m = 1; m <= nimpl; m++) {
                printf "| %s | %s | %s |", k[1], k[2], impls[m]
                for (i = 1; i <= nt; i++) printf " %.2f |", ops[impls[m], k[1], k[2], t[i]] / 1e6
                one = ops[impls[m], k[1], k[2], t[1]]
                printf " %.2fx |", one ? ops[impls[m], k[1], k[2], two] / one : 0
                mx = ops["single-mutex", k[1], k[2], two]
                printf " %s |\n", m == 1 && mx ? sprintf("%.2fx", ops["cachette", k[1], k[2], two] / mx) : ""
            }
        }
        if (round_ratio("cachette" SUBSEP order[1] SUBSEP two, "cachette" SUBSEP order[1] SUBSEP t[1]) == "")
            exit
        printf "\nCachette'"'"'s ratios as medians of per-round ratios:\n\n"
        printf "| workload | keys | %s/%s thr | vs mutex at %s thr |%s\n", two, t[1], two, (base ? " vs " base ", by thread count |" : "")
        printf "|---|---|---:|---:|%s\n", (base ? "---|" : "")
        for (r = 1; r <= n; r++) {
            split(order[r], k, SUBSEP)
            c = "cachette" SUBSEP order[r]
            printf "| %s | %s | %s | %s |", k[1], k[2], round_ratio(c SUBSEP two, c SUBSEP t[1]),
                round_ratio(c SUBSEP two, "single-mutex" SUBSEP order[r] SUBSEP two)
            if (base) {
                printf " "
                for (i = 1; i <= nt; i++)
                    printf "%s%s thr %s", (i > 1 ? ", " : ""), t[i], round_ratio(c SUBSEP t[i], base SUBSEP order[r] SUBSEP t[i])
                printf " |"
            }
            printf "\n"
        }
    }' "$raw"
echo
echo "Raw figures: \`$raw\`."
