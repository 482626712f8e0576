#!/usr/bin/env bash
# Builds the Debian package (make deb) from the files git tracks, in
# build/deb/, with Debian's own tools (dpkg-buildpackage, debhelper: the
# debian/ folder), then checks it: lintian reports no error, and the
# package holds what an operator needs where Debian puts it.
#
#   scripts/deb.sh        -> build/deb/cachette_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(dpkg-parsechangelog -S Version)
out=build/deb src=build/deb/cachette-$version
rm -rf "$out"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b >../build.log 2>&1) || { tail -40 "$out/build.log"; exit 1; }
deb=$(ls "$out"/cachette_"$version"_*.deb)
echo "deb: built $deb"

contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|')
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for want in /usr/bin/cachette /usr/share/man/man1/cachette.1.gz /lib/systemd/system/cachette.service \
    /lib/systemd/system/cachette.service.d/user.conf /etc/default/cachette "/usr/lib/$multiarch/libcachette.a" \
    /usr/include/cachette/store.h "/usr/lib/$multiarch/pkgconfig/cachette.pc" /usr/share/doc/cachette/copyright; do
    grep -qx "$want" <<<"$contents" || { echo "deb: $deb lacks $want" >&2; exit 1; }
done
dpkg-deb --info "$deb" conffiles | grep -qx /etc/default/cachette || { echo "deb: /etc/default/cachette is not a conffile" >&2; exit 1; }

# Errors fail (lintian's exit status); warnings are printed for the record.
lintian --fail-on error --tag-display-limit 0 "$deb"
echo "deb: lintian reports no error"
