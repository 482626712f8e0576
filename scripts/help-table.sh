#!/usr/bin/env bash
# Prints BIN --help's flags as a table, one line a flag: the flag, its help
# text and its environment variable (empty for --help and --version),
# separated by tabs. What scripts/manpage.sh and scripts/envfile.sh make
# their flag lists from, so that neither can drift from the binary.
#
#   scripts/help-table.sh BIN
set -euo pipefail
"$1" --help | awk '
    function flush() { if (flag != "") printf "%s\t%s\t%s\n", flag, text, env; flag = "" }
    /^  --[a-z0-9-]+/ {
        flush()
        flag = $1; text = $0; sub(/^  --[a-z0-9-]+ +/, "", text); env = ""; next
    }
    /^ +\[env [A-Z0-9_]+\]$/ { env = $2; sub(/\]$/, "", env) }
    END { flush() }
'
