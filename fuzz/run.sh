#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/fuzz_*.c) with clang, ASan and UBSan
# into build/fuzz/, runs each for SECONDS seconds on a fresh copy of its seed
# corpus (build/fuzz/corpus-<target>; fuzz/corpus/ is never written), and
# prints a Markdown table of executions and coverage. Exits non-zero if a
# target failed to build or crashed; the crashing input is in
# build/fuzz/artifacts/<target>/ and the log in build/fuzz/log-<target>.txt.
#
#   fuzz/run.sh [SECONDS] [TARGET...]    default: 60 seconds, every target
#
# Each target names what it links in " * Links:" lines of its opening comment:
# src/ files, folders ("src/store/": every .c file there) and -l flags.
#
# Environment: FUZZ_CC (default clang), FUZZ_KEEP_CORPUS=1 to go on from what
# earlier runs found instead of the seeds alone, FUZZ_ARGS for more libFuzzer
# flags.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
case "$seconds" in '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

cc=${FUZZ_CC:-clang}
out=build/fuzz
san=("-fsanitize=address,undefined" -fno-sanitize-recover=all)
cflags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -pthread -DH2O_USE_LIBUV=0 -Iinclude -Isrc)

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        t=${f#fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

# What a target links, one word a line: its " * Links:" lines, with source
# files, folders (every .c file in them) and -l flags.
links() {
    local w
    # shellcheck disable=SC2013 # words, not lines, and folders are globbed below
    for w in $(sed -n 's/^ \* Links: *//p' "fuzz/fuzz_$1.c"); do
        case "$w" in
        */) ls "$w"*.c ;;
        *) echo "$w" ;;
        esac
    done
}

for t in "${targets[@]}"; do
    [ -f "fuzz/fuzz_$t.c" ] || { echo "fuzz/run.sh: no target fuzz/fuzz_$t.c" >&2; exit 2; }
done
mkdir -p "$out/obj"

# Every src/ file any target needs, compiled once with coverage instrumentation.
mapfile -t sources < <(for t in "${targets[@]}"; do
    for w in $(links "$t"); do case "$w" in *.c) echo "$w" ;; esac; done
done | sort -u)

obj_of() {
    local o=${1%.c}.o
    echo "$out/obj/${o//\//_}"
}

build_start=$(date +%s)
export cc out
export -f obj_of
# shellcheck disable=SC2016 # expanded by the inner bash
printf '%s\n' "${sources[@]}" | CFLAGS="${cflags[*]} ${san[*]} -fsanitize=fuzzer-no-link" \
    xargs -r -P "$(nproc)" -I{} bash -c '$cc $CFLAGS -c "$1" -o "$(obj_of "$1")"' _ {}

for t in "${targets[@]}"; do
    objs=() libs=()
    for w in $(links "$t"); do
        case "$w" in
        *.c) objs+=("$(obj_of "$w")") ;;
        *) libs+=("$w") ;;
        esac
    done
    "$cc" "${cflags[@]}" -Wall -Wextra -Werror "${san[@]}" -fsanitize=fuzzer "fuzz/fuzz_$t.c" "${objs[@]}" \
        -o "$out/fuzz_$t" "${libs[@]}"
done
echo "built ${#targets[@]} targets in $(($(date +%s) - build_start)) s with $("$cc" --version | head -n 1)" >&2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus=$out/corpus-$t
    [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$corpus"
    mkdir -p "$corpus" "$out/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -n fuzz/corpus/"$t"/* "$corpus"/
    fi
    dict=()
    if [ -f "fuzz/$t.dict" ]; then
        dict=("-dict=fuzz/$t.dict")
    fi
    log=$out/log-$t.txt
    echo "fuzzing $t for $seconds s (log: $log)" >&2
    rc=0
    # shellcheck disable=SC2086
    "$out/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/$t/" "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    result=ok
    if [ "$rc" -ne 0 ]; then
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1)
        result="**CRASH** (exit $rc${artifact:+, input $artifact})"
        grep -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -n 5 | sed "s/^/$t: /" >&2 || true
    fi
    rows+=("| $t | $seconds | ${rate:-?} | ${execs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $result |")
done

echo
echo "| target | seconds | exec/s | executions | cov | ft | corpus (units/bytes) | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
exit "$failed"
