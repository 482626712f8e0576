#!/usr/bin/env bash
# Runs cmocka test binaries and keeps score.
#
#   tests/run.sh --variant NAME --results FILE BIN...   run each BIN, append totals to FILE
#                                                       (NAME *memcheck*: under valgrind memcheck)
#   tests/run.sh --total FILE                           print "N passed, N failed"; fail if any failed
#
# A binary that crashes, times out or prints no cmocka summary counts as one
# failed test, so a sanitizer abort can never pass silently. A skipped test
# counts as failed too: tests skip only when a tool they need is missing,
# which scripts/deps.sh should have installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = --total ]; then
    passed=0 failed=0
    while read -r _ p f; do passed=$((passed + p)); failed=$((failed + f)); done < "$2"
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

variant=$2 results=$4
shift 4
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
# Per binary. Under valgrind (the server in "valgrind", the binary in "memcheck")
# on a loaded machine an integration binary may run for many minutes.
case "$variant" in
*valgrind* | *memcheck*) timeout_s=${TEST_TIMEOUT:-1800} ;;
*) timeout_s=${TEST_TIMEOUT:-300} ;;
esac
# TSan's shadow memory layout breaks under high ASLR entropy on some kernels
# ("unexpected memory mapping"); run its binaries without randomisation.
# A "memcheck" variant runs its binaries under valgrind memcheck: any error fails the binary.
launcher=()
case "$variant" in
*tsan*) setarch "$(uname -m)" -R true 2>/dev/null && launcher=(setarch "$(uname -m)" -R) ;;
*memcheck*)
    launcher=(env CACHETTE_MEMCHECK=1 valgrind -q --error-exitcode=99 --num-callers=30
              --suppressions="$here/valgrind/valgrind.supp") ;;
esac
passed=0 failed=0 variant_started=$SECONDS
mkdir -p "$(dirname "$results")"
for bin in "$@"; do
    echo "=== [$variant] $(basename "$bin")"
    started=$SECONDS
    out=$(timeout "$timeout_s" "${launcher[@]}" "$bin" 2>&1)
    rc=$?
    echo "$out"
    echo "=== [$variant] $(basename "$bin"): $((SECONDS - started)) s"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
    p=${p:-0} f=${f:-0} s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $(basename "$bin") exited with status $rc"
        f=1
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $(basename "$bin") printed no cmocka summary"
        f=1
    fi
    if [ "$s" -gt 0 ]; then
        echo "!!! $(basename "$bin") skipped $s test(s): counted as failed"
        f=$((f + s))
    fi
    passed=$((passed + p)) failed=$((failed + f))
done
echo "$variant $passed $failed" >> "$results"
echo "--- [$variant] $passed passed, $failed failed in $((SECONDS - variant_started)) s"
