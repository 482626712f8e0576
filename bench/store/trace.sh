#!/usr/bin/env bash
# The trace-replay benchmark: builds trace.c with the store's sources, checks
# its LRU and FIFO references and the store's SIEVE on hand-counted traces
# (--self-test), replays the synthetic traces (Zipf 0.8/0.99/1.2, scan, loop,
# one-hit wonders; see trace.c) at cache sizes given as a percentage of each
# trace's distinct keys, and prints a Markdown table of miss ratios: the
# store's S3-FIFO and SIEVE, exact LRU and FIFO, all holding the same number
# of entries C. A policy the store does not have shows "n/a".
#
#   KEYS=100000 REQUESTS=2000000 SEED=1 WARMUP=0 SIZES=1,10,30 bench/store/trace.sh
#
# TRACES=zipf-0.99,scan picks traces (default all). STORE_REV=<commit> builds
# the store's sources (src/store, include) as committed there instead of the
# working tree's, to compare revisions or to run while the tree is mid-edit.
# Raw lines go to bench/results/trace-<timestamp>.txt. RAW=<file> formats the
# raw lines of an earlier run instead, with MACHINE=<description> naming where
# it ran. The defaults take about half a minute on one core; a run is bounded
# at 30 minutes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

KEYS=${KEYS:-100000}
REQUESTS=${REQUESTS:-2000000}
SEED=${SEED:-1}
WARMUP=${WARMUP:-0}
SIZES=${SIZES:-1,10,30}
TRACES=${TRACES:-}
STORE_REV=${STORE_REV:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
raw=bench/results/trace-$(date -u +%Y%m%dT%H%M%SZ).txt

args=(--keys "$KEYS" --requests "$REQUESTS" --seed "$SEED" --warmup "$WARMUP" --sizes "$SIZES")
[ -n "$TRACES" ] && args+=(--traces "$TRACES")

if [ -n "${RAW:-}" ]; then
    raw=$RAW
    commit=$(sed -n 's/^# store at commit //p' "$raw" | head -1)
    commit=${commit:-unknown}
else
    commit=$(git rev-parse --short "${STORE_REV:-HEAD}" 2>/dev/null || echo unknown)
    if [ -z "$STORE_REV" ] && ! git diff --quiet HEAD -- src/store src/monotonic.h include 2>/dev/null; then
        commit="$commit with uncommitted changes in src/store or include"
    fi
    tree=.
    if [ -n "$STORE_REV" ]; then
        tree=$tmp/tree
        mkdir -p "$tree"
        git archive "$STORE_REV" src include | tar -x -C "$tree" # src/store includes src/monotonic.h
    fi
    cc -O2 -std=gnu11 -Wall -Wextra -Werror -pthread -I"$tree/include" -I"$tree/src" -o "$tmp/trace" \
        bench/store/trace.c "$tree"/src/store/*.c -lm
    "$tmp/trace" --self-test 2>"$tmp/self-test" || { cat "$tmp/self-test" >&2; exit 1; }
    echo "self-test passed; replaying (keys $KEYS, requests $REQUESTS, sizes $SIZES%)" >&2
    echo "# store at commit $commit" >"$raw"
    timeout 1800 "$tmp/trace" "${args[@]}" | tee -a "$raw" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
command="KEYS=$KEYS REQUESTS=$REQUESTS SEED=$SEED WARMUP=$WARMUP SIZES=$SIZES"
[ -n "$TRACES" ] && command="$command TRACES=$TRACES"
[ -n "$STORE_REV" ] && command="$command STORE_REV=$STORE_REV"
echo "### Miss ratios by eviction policy (trace replay), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- Command: \`$command bench/store/trace.sh\`"
echo "- Machine: ${MACHINE:-$(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)}; store at commit $commit"
if [ "$WARMUP" = 0 ]; then
    echo "- Misses counted over the whole trace, cold misses included."
else
    echo "- Misses counted after the first $WARMUP requests."
fi
echo "- C: entries every policy holds (cache size % of the trace's distinct keys); the store, one shard, gets the"
echo "  byte budget that holds exactly C of its 16-byte keys and 16-byte values. Lower is better."
echo
awk '
    /^# trace / {
        line = substr($0, 9)
        name = substr(line, 1, index(line, ":") - 1)
        fp = line; sub(/.*footprint /, "", fp); sub(/,.*/, "", fp)
        rq = line; sub(/.*requests /, "", rq); sub(/,.*/, "", rq)
        desc[name] = line; floor[name] = rq ? fp / rq : 0
        tnames[++nt] = name
        next
    }
    /^# note: / {
        nn++
        held = $0; sub(/.*held /, "", held); sub(/ .*/, "", held)
        was = $0; sub(/.*, /, "", was); sub(/ .*/, "", was)
        drift = held - was; if (drift < 0) drift = -drift
        if (drift > maxdrift) maxdrift = drift
        next
    }
    /^#/ || NF < 5 { next }
    {
        key = $1 SUBSEP $2
        if (!(key in target)) { target[key] = $3; rows[++nr] = key }
        cap[key, $4] = $5
        budget[key, $4] = $6
        ratio[key, $4] = ($5 == "n/a") ? "n/a" : $9
    }
    function cell(k, p) {
        if (ratio[k, p] == "" || ratio[k, p] == "n/a")
            return "n/a"
        return sprintf("%.4f%s", ratio[k, p], cap[k, p] == target[k] ? "" : " (C=" cap[k, p] ")")
    }
    END {
        print "| trace | cache size | C | S3-FIFO | SIEVE | LRU | FIFO | S3-FIFO - LRU |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|"
        for (r = 1; r <= nr; r++) {
            k = rows[r]; split(k, f, SUBSEP)
            d = (ratio[k, "s3fifo"] == "n/a" || ratio[k, "s3fifo"] == "") ? "n/a" : \
                sprintf("%+.4f", ratio[k, "s3fifo"] - ratio[k, "lru"])
            printf "| %s | %s%% | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], target[k], cell(k, "s3fifo"),
                cell(k, "sieve"), cell(k, "lru"), cell(k, "fifo"), d
        }
        print ""
        print "Traces (the cold-miss floor is distinct keys / requests, the least any policy can miss without a warm-up):"
        print ""
        for (i = 1; i <= nt; i++)
            printf "- %s; cold-miss floor %.4f\n", desc[tnames[i]], floor[tnames[i]]
        for (r = 1; r <= nr; r++) {
            k = rows[r]
            if (budget[k, "s3fifo"] > 0 && budget[k, "sieve"] > 0) {
                q = budget[k, "s3fifo"] / budget[k, "sieve"]
                if (!nq || q < qmin) qmin = q
                if (!nq || q > qmax) qmax = q
                nq++
            }
        }
        print ""
        if (nq)
            printf "For the same C the store budget is %.1f%% to %.1f%% bigger with S3-FIFO than with SIEVE (its ghost).\n",
                (qmin - 1) * 100, (qmax - 1) * 100
        if (nn)
            printf "After %d of the store replays the entry count had moved from C by at most %d: glibc now and then\n" \
                "gives an entry a 16-byte bigger chunk, which the store counts.\n", nn, maxdrift
    }' "$raw"
echo
echo "Raw figures: \`$raw\`."
