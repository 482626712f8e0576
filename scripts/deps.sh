#!/usr/bin/env bash
# Installs the Debian 12 packages cachette needs to build, test and benchmark,
# skipping any already present, so `make run` and `make test` work on a fresh
# machine (nodejs, npm and Debian's node-redis 4 serve tests/clients/, whose
# npm packages scripts/npm-ci.sh fetches at test time). Pass "bench" to
# add the benchmark tools (wrk, nginx), "peers" to add the peers the
# side-by-side benchmark measures (Go + Gin, Webdis + Redis, memcached and
# their load generators), "fuzz" for clang and libFuzzer.
set -euo pipefail

packages=(gcc make pkg-config libh2o-evloop-dev libssl-dev libjansson-dev libsystemd-dev
          libcmocka-dev libcurl4-openssl-dev nghttp2-client curl openssl python3 valgrind
          haproxy nginx-light nutcracker redis-tools python3-redis nodejs npm node-redis
          man-db groff-base systemd python3-yaml python3-jsonschema)
case "${1:-}" in
bench) packages+=(wrk util-linux procps) ;;
fuzz) packages+=(clang libclang-rt-14-dev) ;;
deploy) packages+=(prometheus) ;; # promtool, for make check-deploy
deb) packages+=(dpkg-dev debhelper lintian fakeroot) ;;
peers) packages+=(wrk util-linux procps golang-go golang-github-gin-gonic-gin-dev webdis redis-server
                  memcached libmemcached-tools nghttp2-client) ;;
esac

# What installed packages provide counts as present: NodeSource's nodejs
# provides npm (and conflicts with Debian's), so asking apt for npm there
# would replace that nodejs with Debian's.
provided=$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null |
           sed -n 's/^ii *|//p' | tr ',' '\n' | sed 's/^ *//; s/ .*//')
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        grep -qxF "$p" <<<"$provided" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (haproxy, nginx, nutcracker, redis-server,
# memcached) would start it on install, on ports the tests or another server
# may hold; tests and benchmarks start their own. A policy-rc.d that answers
# 101 keeps them stopped, as in a container image build; one already present
# is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
