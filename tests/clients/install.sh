#!/bin/sh
# Installs the npm packages pinned in tests/clients/package-lock.json into DIR
# (build/node-clients by default: ignored, shared by every build variant), once:
# skipped while DIR holds an install of this very package-lock.json. npm's
# registry is the only network it needs; the whole install is bounded to
# 200 s. Prints the node_modules folder to put on NODE_PATH.
#
#   tests/clients/install.sh [DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-build/node-clients}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Two test runs at once (two variants started by hand) install once, in turn.
exec 9>"$dir/.lock"
flock -w 300 9
key=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$dir/installed" 2>/dev/null)" != "$key" ]; then
    rm -rf "$dir/node_modules" "$dir/installed"
    cp "$here/package.json" "$here/package-lock.json" "$dir/"
    # ioredis 6 declares node >= 20; Debian 12's node 18 runs it all the same.
    timeout 200 npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error \
        --engine-strict=false --fetch-timeout=60000 --fetch-retries=2 --fetch-retry-maxtimeout=20000 >&2
    echo "$key" > "$dir/installed"
fi
echo "$dir/node_modules"
