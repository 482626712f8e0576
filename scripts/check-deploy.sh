#!/usr/bin/env bash
# Checks the monitoring files of deploy/ against Prometheus's own tools and
# a running cachette (make check-deploy; CI runs it):
#   - promtool check rules and promtool test rules on deploy/prometheus/;
#   - the Grafana dashboard parses, and each panel's PromQL passes promtool
#     (written into a rules file of recording rules, $instance replaced);
#   - every cachette_* metric the rules and the dashboard name is one that
#     build/cachette's /metrics serves (a histogram's _bucket, _sum, _count).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CACHETTE_BIN:-build/cachette}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=

(cd deploy/prometheus && promtool check rules cachette-rules.yml && promtool test rules cachette-rules.test.yml)

/usr/bin/python3 - deploy/grafana/cachette-dashboard.json "$work/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
assert exprs and all(e.strip() for e in exprs), "a panel without a query"
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$instance", ".*")
        out.write("      - record: dashboard:panel_%d\n        expr: %s\n" % (i, json.dumps(e)))
print("dashboard: %d panels, %d queries" % (len(dash["panels"]), len(exprs)))
PY
promtool check rules "$work/dashboard-rules.yml"

"$bin" --port 0 --log-level warn >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "check-deploy: $bin did not start: $(cat "$work/out")" >&2; exit 1; }
curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics"
served=$(sed -n 's/^# TYPE \(cachette_[a-z_]*\) histogram$/\1_bucket\n\1_sum\n\1_count/p; s/^# TYPE \(cachette_[a-z_]*\) .*/\1/p' \
    "$work/metrics" | sort -u)
named=$(grep -oh 'cachette_[a-z_]*' deploy/prometheus/cachette-rules.yml deploy/prometheus/cachette-rules.test.yml \
    deploy/grafana/cachette-dashboard.json | sort -u)
missing=$(comm -23 <(echo "$named") <(echo "$served"))
if [ -n "$missing" ]; then
    echo "check-deploy: named in deploy/ but not served by /metrics: $missing" >&2
    exit 1
fi
echo "check-deploy: ok ($(echo "$named" | wc -l) metrics named, all served)"
