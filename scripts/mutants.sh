#!/usr/bin/env bash
# Mutation check: could a plausible bug pass every test?
#
#   scripts/mutants.sh                  every mutant in tests/mutants.txt
#   scripts/mutants.sh 3 sieve-hand     only these (by number or id)
#   MUTANTS_FILTER=store scripts/mutants.sh    only ids or files matching this regex
#
# Each mutant in tests/mutants.txt is one plausible bug: an exact fragment of
# one source file and what a developer might have written instead. For each,
# the tree at HEAD is checked out in one temporary git worktree (reset with
# `git checkout -- .` between mutants, so builds stay incremental), the
# mutant applied, the release build made and the unit, embed, integration
# and stress suites run, each binary under TEST_TIMEOUT (120 s here). The
# first failing binary ends the mutant's run: it is CAUGHT, and the table
# names the binary and its failing tests (a suite that hangs until its
# timeout counts as caught too). A mutant every binary passes SURVIVED: some
# plausible bug in that line would ship. The unmutated tree is built and run
# first; if it fails, nothing a mutant does can be told apart, so the run
# stops there (MUTANTS_BASELINE=0 skips this when you just saw it pass).
#
# A mutant whose fragment is not found, or found twice, no longer applies:
# that is an error (exit 2), never a pass; update the list with the code.
# Likewise a mutant that does not compile (exit 2). Exits 1 if any mutant
# survived, 0 if all were caught. Tests listen on 127.0.0.1 only; the
# worktree is removed on exit, Ctrl-C included. Log: $MUTANTS_LOG
# (default build/mutants.log).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
list=${MUTANTS_LIST:-$here/tests/mutants.txt}
log=${MUTANTS_LOG:-$here/build/mutants.log}
helper=$here/scripts/mutants.py
export TEST_TIMEOUT=${TEST_TIMEOUT:-120}
build_timeout=${MUTANTS_BUILD_TIMEOUT:-900}
jobs=${MUTANTS_JOBS:-2}

mkdir -p "$(dirname "$log")"
: >"$log"
say() { echo "$@" | tee -a "$log"; }

# ---- which mutants ----------------------------------------------------------

mapfile -t all < <(python3 "$helper" list "$list") || exit 2
[ ${#all[@]} -gt 0 ] || { echo "mutants: $list lists no mutant" >&2; exit 2; }
selected=()
for row in "${all[@]}"; do
    IFS=$'\t' read -r n id file _ <<<"$row"
    if [ $# -gt 0 ]; then
        for want in "$@"; do
            [ "$want" = "$n" ] || [ "$want" = "$id" ] && selected+=("$n")
        done
    elif [ -z "${MUTANTS_FILTER:-}" ] || [[ "$id $file" =~ $MUTANTS_FILTER ]]; then
        selected+=("$n")
    fi
done
[ ${#selected[@]} -gt 0 ] || { echo "mutants: no mutant matches ${*:-$MUTANTS_FILTER}" >&2; exit 2; }

# ---- the temporary worktree -----------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cachette-mutants.XXXXXX")
tree=$tmp/tree
# Every long step runs in the background and is waited for, so that Ctrl-C
# interrupts the wait at once (bash runs a trap only when a foreground child
# exits, and drops SIGINT if that child did not die of it; `timeout` puts
# make and the test binaries in process groups of their own, which a
# terminal's SIGINT never reaches). Cleanup then ends this script's own
# descendants, by process id.
descendants() {
    local child
    for child in $(pgrep -P "$1"); do
        echo "$child"
        descendants "$child"
    done
}
in_background() {
    "$@" &
    wait $!
}
cleanup() {
    trap - EXIT INT TERM
    local pids
    pids=$(descendants $$)
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null
    git -C "$here" worktree remove --force "$tree" >/dev/null 2>&1
    rm -rf "$tmp"
    git -C "$here" worktree prune >/dev/null 2>&1
}
trap cleanup EXIT
trap 'echo; echo "mutants: interrupted" >&2; cleanup; exit 130' INT TERM
git -C "$here" worktree add --detach --quiet "$tree" HEAD || exit 2
say "mutants: $(git -C "$tree" log -1 --format='%h %s'), ${#selected[@]} of ${#all[@]} mutants, TEST_TIMEOUT=${TEST_TIMEOUT}s"

python3 "$helper" check "$list" "$tree" "${selected[@]}" 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { say "mutants: stale mutants above: update tests/mutants.txt"; exit 2; }

cd "$tree" || exit 2
bins=()
for f in tests/unit/*.c; do bins+=("build/tests/$(basename "$f" .c)"); done
bins+=(build/tests/test_embed)
for f in tests/integration/*.c tests/stress/*.c; do bins+=("build/tests/$(basename "$f" .c)"); done

build() {
    in_background timeout "$build_timeout" make --no-print-directory -j"$jobs" B=build build/cachette "${bins[@]}" \
        >>"$log" 2>&1
}

# Runs the binaries in order until one fails; sets $verdict to "binary: tests" of the first failure, or "".
run_suites() {
    verdict=""
    local bin out rc failed
    for bin in "${bins[@]}"; do
        CACHETTE_BIN=build/cachette in_background tests/run.sh --variant mutant --results "$tmp/results.txt" "$bin" \
            >"$tmp/out" 2>&1
        rc=$?
        out=$(cat "$tmp/out")
        echo "$out" >>"$log"
        if ! grep -q '^--- \[mutant\] [0-9]* passed, 0 failed$' <<<"$out"; then
            failed=$(sed -n 's/^\[  FAILED  \] \([a-z_0-9]*\)$/\1/p' <<<"$out" | awk '!seen[$0]++' | head -n 3 |
                paste -sd, -)
            grep -q "exited with status 124" <<<"$out" && failed="${failed:+$failed, }timeout"
            grep -q "exited with status" <<<"$out" && [ -z "$failed" ] &&
                failed=$(sed -n 's/^!!! [a-z_0-9]* \(exited with status [0-9]*\)/\1/p' <<<"$out" | head -n 1)
            verdict="$(basename "$bin"): ${failed:-failed}"
            return
        fi
        [ "$rc" -eq 0 ] || { verdict="$(basename "$bin"): run.sh status $rc"; return; }
    done
}

start=$SECONDS
if [ "${MUTANTS_BASELINE:-1}" != 0 ]; then
    say "--- baseline (no mutant): building"
    build || { say "mutants: the unmutated tree does not build (see $log)"; exit 2; }
    run_suites
    [ -z "$verdict" ] || { say "mutants: the unmutated tree fails ($verdict): fix that first"; exit 2; }
    say "--- baseline passes ($((SECONDS - start)) s)"
fi

# ---- each mutant -------------------------------------------------------------

caught=0 survived=0 broken=0
rows=()
for n in "${selected[@]}"; do
    IFS=$'\t' read -r _ id file why <<<"${all[n - 1]}"
    t0=$SECONDS
    git checkout --quiet -- . || exit 2
    echo "=== mutant $n $id ($file): $why" >>"$log"
    if ! python3 "$helper" apply "$list" "$tree" "$n" 2>&1 | tee -a "$log"; then
        exit 2 # checked above; only a list edited meanwhile gets here
    fi
    git --no-pager diff --no-color >>"$log"
    if ! build; then
        result="BUILD FAILED" by="the mutant must compile with -Werror (see $log)"
        broken=$((broken + 1))
    else
        run_suites
        if [ -n "$verdict" ]; then
            result=caught by=$verdict
            caught=$((caught + 1))
        else
            result=SURVIVED by="every suite passed"
            survived=$((survived + 1))
        fi
    fi
    row=$(printf '%3s  %-32s %-26s %-9s %4ss  %s' "$n" "$id" "$file" "$result" $((SECONDS - t0)) "$by")
    rows+=("$row")
    say "$row"
done
git checkout --quiet -- .

say ""
say "  #  mutant                           file                       result     time  by"
for row in "${rows[@]}"; do say "$row"; done
say ""
say "run time $((SECONDS - start)) s"
[ "$broken" -eq 0 ] || say "$broken mutant(s) did not build: fix tests/mutants.txt"
say "$caught caught, $survived survived"
[ "$broken" -eq 0 ] || exit 2
[ "$survived" -eq 0 ]
