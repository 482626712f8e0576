#!/usr/bin/env bash
# Builds a server with one deliberate bug of tests/lin/bugs.txt, for the
# linearizability check to catch (tests/lin/test_linearizable.c), and prints
# the binary's path.
#
#   scripts/lin-broken.sh N [DIR]     bug N (1-based) under DIR (build/lin-broken)
#
# The tracked files are copied to DIR/bug-N/tree (their times kept, so a
# second build is incremental), the bug applied with scripts/mutants.py (a
# fragment no longer found is an error: update bugs.txt with the code), and
# the server built there without LTO (quicker; the bug is in the logic).
set -euo pipefail
n=$1 dir=${2:-build/lin-broken}
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$dir/bug-$n/tree
mkdir -p "$tree"
(cd "$here" && git ls-files -z | xargs -0 cp -p --parents -t "$(cd - >/dev/null && cd "$tree" && pwd)")
# The bug's file is rewritten each time: make sees it newer than its object.
/usr/bin/python3 "$here/scripts/mutants.py" apply "$here/tests/lin/bugs.txt" "$tree" "$n" >&2
make -s -C "$tree" -j"$(nproc)" LTO= build/cachette >&2
echo "$tree/build/cachette"
