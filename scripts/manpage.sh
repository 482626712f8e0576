#!/usr/bin/env bash
# Writes cachette's manual page (troff) to stdout: docs/cachette.1.in with
# its OPTIONS and ENVIRONMENT sections made from `BIN --help`, so the page
# lists exactly the flags and variables the binary has.
#
#   scripts/manpage.sh BIN [TEMPLATE]
set -euo pipefail
bin=$1 template=${2:-docs/cachette.1.in}
help=$("$bin" --help)
version=$("$bin" --version | sed -n 's/^cachette //p')
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%d)

# Text for troff: backslashes doubled, '-' as \-, and \& before a leading '.' or "'".
escape() {
    sed -e 's/\\/\\\\/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# "  --flag   text" lines, each maybe followed by "  [env NAME]": one .TP entry a flag.
options=$(awk '
    /^  --[a-z0-9-]+/ {
        flag = $1; sub(/^  --[a-z0-9-]+ +/, "", $0); text = $0
        printf "FLAG\t%s\t%s\n", flag, text; next
    }
    /^ +\[env [A-Z0-9_]+\]$/ { env = $2; sub(/\]$/, "", env); printf "ENV\t%s\n", env }
' <<<"$help")

render_options() {
    while IFS=$'\t' read -r kind a b; do
        if [ "$kind" = FLAG ]; then
            printf '.TP\n.B %s\n%s\n' "$(escape <<<"$a")" "$(escape <<<"$b")"
        else
            printf '.br\nEnvironment: \\fB%s\\fR\n' "$a"
        fi
    done <<<"$options"
}

render_environment() {
    printf 'Each variable sets the flag of the same name (\\fBCACHETTE_MAX_MEMORY\\fR is \\fB\\-\\-max\\-memory\\fR):\n'
    local last=""
    while IFS=$'\t' read -r kind a _; do
        if [ "$kind" = FLAG ]; then
            last=$a
        else
            printf '.TP\n.B %s\n%s\n' "$a" "$(escape <<<"$last")"
        fi
    done <<<"$options"
}

while IFS= read -r line; do
    case "$line" in
    @OPTIONS@) render_options ;;
    @ENVIRONMENT@) render_environment ;;
    *) line=${line//@VERSION@/$version}; printf '%s\n' "${line//@DATE@/$date}" ;;
    esac
done <"$template"
