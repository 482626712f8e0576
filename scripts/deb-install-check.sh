#!/usr/bin/env bash
# Installs build/deb's package on THIS machine with apt, checks what an
# operator gets, then purges it and checks that nothing is left. It changes
# the machine (a system user stays, as Debian leaves them): run it on a
# throwaway one, as CI does (make deb-install-check, after make deb).
#
# Checked: the cachette user and group; /var/lib/cachette (0700) and
# /var/log/cachette owned by it; /etc/default/cachette a conffile; the unit
# enabled for multi-user.target and passing systemd-analyze verify with its
# drop-in; the installed server starting as the cachette user on
# /var/lib/cachette and keeping a value across a restart; man cachette; an
# embedder built with pkg-config; after purge, none of the files, data or
# settings. Starting the unit itself needs systemd as PID 1, which CI's
# machines do not run: the server is started as the unit would start it.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls build/deb/cachette_*.deb)
fail() { echo "deb-install-check: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "./$deb" >/dev/null
getent passwd cachette >/dev/null || fail "no cachette user"
[ "$(stat -c '%U %a' /var/lib/cachette)" = "cachette 700" ] || fail "/var/lib/cachette: $(stat -c '%U %a' /var/lib/cachette)"
[ "$(stat -c '%U' /var/log/cachette)" = cachette ] || fail "/var/log/cachette is not cachette's"
dpkg-query -W -f='${Conffiles}\n' cachette | grep -q ' /etc/default/cachette ' || fail "/etc/default/cachette is not a conffile"
[ "$(stat -c '%U %a' /etc/default/cachette)" = "root 600" ] || fail "/etc/default/cachette: $(stat -c '%U %a' /etc/default/cachette)"
[ -L /etc/systemd/system/multi-user.target.wants/cachette.service ] || fail "the unit is not enabled"
systemd-analyze verify /lib/systemd/system/cachette.service || fail "systemd-analyze verify"
systemd-analyze cat-config systemd/system/cachette.service 2>/dev/null | grep -q '^User=cachette' ||
    grep -q '^User=cachette' /lib/systemd/system/cachette.service.d/user.conf || fail "the drop-in does not set User=cachette"
man -w cachette >/dev/null || fail "man cachette finds no page"

# The server as the unit starts it: the cachette user, its settings file's variables, its state directory.
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
start() {
    setpriv --reuid=cachette --regid=cachette --init-groups env CACHETTE_PORT=0 CACHETTE_DATA_DIR=/var/lib/cachette \
        /usr/bin/cachette >"$work/out" 2>"$work/err" &
    pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/out")
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0
        sleep 0.1
    done
    fail "the installed server did not start: $(cat "$work/err")"
}
start
curl -sf -X PUT -H 'Content-Type: application/json' "http://127.0.0.1:$port/cache/packaged" -d '{"value":"kept"}' >/dev/null
kill "$pid"; wait "$pid"; pid=
start
curl -sf "http://127.0.0.1:$port/cache/packaged" | grep -q '"kept"' || fail "the value did not survive a restart"
kill "$pid"; wait "$pid"; pid=

printf '#include <cachette/store.h>\nint main(void) { struct store *s = store_create(&(struct store_config){0});\n'\
'return s == NULL; }\n' >"$work/embed.c"
cc -o "$work/embed" "$work/embed.c" $(pkg-config --cflags --libs --static cachette) && "$work/embed" || fail "embedder"

apt-get purge -y -qq cachette >/dev/null
for gone in /usr/bin/cachette /var/lib/cachette /var/log/cachette /etc/default/cachette /lib/systemd/system/cachette.service \
    /etc/systemd/system/multi-user.target.wants/cachette.service; do
    [ ! -e "$gone" ] || fail "purge left $gone"
done
echo "deb-install-check: ok (installed, served as cachette from /var/lib/cachette, purged)"
