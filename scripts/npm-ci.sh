#!/bin/sh
# Installs the npm packages pinned in PKGDIR/package-lock.json into DEST
# (ignored, shared by every build variant), once: skipped while DEST holds
# an install of this very package-lock.json. npm's registry is the only
# network it needs; the whole install is bounded to 200 s. Prints the
# node_modules folder (for NODE_PATH, or its .bin).
#
#   scripts/npm-ci.sh tests/clients build/node-clients   Redis clients for test_resp_clients
#   scripts/npm-ci.sh tests/openapi build/node-openapi   Spectral, the OpenAPI linter
set -eu
pkg=$(cd "$1" && pwd)
dir=$2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Two test runs at once (two variants started by hand) install once, in turn.
exec 9>"$dir/.lock"
flock -w 300 9
key=$(sha256sum "$pkg/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$dir/installed" 2>/dev/null)" != "$key" ]; then
    rm -rf "$dir/node_modules" "$dir/installed"
    cp "$pkg/package.json" "$pkg/package-lock.json" "$dir/"
    # ioredis 6 declares node >= 20; Debian 12's node 18 runs it all the same.
    timeout 200 npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error \
        --engine-strict=false --fetch-timeout=60000 --fetch-retries=2 --fetch-retry-maxtimeout=20000 >&2
    echo "$key" > "$dir/installed"
fi
echo "$dir/node_modules"
