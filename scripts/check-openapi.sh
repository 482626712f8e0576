#!/usr/bin/env bash
# Keeps docs/openapi.yaml true: lints it with Spectral's OpenAPI rules
# (tests/openapi/spectral.yaml, warnings fail), then validates every response
# the integration suites recorded (CACHETTE_TEST_RESPONSE_LOG) against it
# (tests/openapi/check_responses.py, itself tested first on hand-made
# responses). With RESULTS, appends "openapi P F" for tests/run.sh --total:
# the lint counts as one test, each hand-made case and each operation and
# status the check grouped as one more.
#
#   scripts/check-openapi.sh LOG [RESULTS]
set -uo pipefail
log=$1 results=${2:-}
doc=docs/openapi.yaml
passed=0 failed=0

echo "=== [openapi] spectral lint $doc"
if nm=$(scripts/npm-ci.sh tests/openapi build/node-openapi) &&
    "$nm/.bin/spectral" lint --ruleset tests/openapi/spectral.yaml --fail-severity=warn "$doc"; then
    passed=$((passed + 1))
else
    echo "!!! the lint failed"
    failed=$((failed + 1))
fi

# Runs a python3 check that ends with "N passed, M failed" and adds its counts.
run_check() {
    local out rc p f
    out=$(/usr/bin/python3 -B "$@" 2>&1)
    rc=$?
    echo "$out"
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$out" | tail -n 1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$out" | tail -n 1)
    if [ -z "$p" ]; then
        echo "!!! $1 printed no summary (exit $rc)"
        p=0 f=1
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    passed=$((passed + p)) failed=$((failed + f))
}

echo "=== [openapi] the check refuses what it must (hand-made responses)"
run_check tests/openapi/test_check_responses.py "$doc"
echo "=== [openapi] every recorded response against $doc"
run_check tests/openapi/check_responses.py "$doc" "$log"

[ -n "$results" ] && echo "openapi $passed $failed" >> "$results"
echo "--- [openapi] $passed passed, $failed failed"
[ "$failed" -eq 0 ]
