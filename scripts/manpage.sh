#!/usr/bin/env bash
# Writes cachette's manual page (troff) to stdout: docs/cachette.1.in with
# its OPTIONS and ENVIRONMENT sections made from BIN's --help
# (scripts/help-table.sh), so the page lists exactly the flags and variables
# the binary has.
#
#   scripts/manpage.sh BIN [TEMPLATE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 template=${2:-docs/cachette.1.in}
table=$("$here/help-table.sh" "$bin")
version=$("$bin" --version | sed -n 's/^cachette //p')
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%d)

# Text for troff: backslashes doubled, '-' as \-, and \& before a leading '.' or "'".
escape() {
    sed -e 's/\\/\\\\/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

render_options() {
    while IFS=$'\t' read -r flag text env; do
        printf '.TP\n.B %s\n%s\n' "$(escape <<<"$flag")" "$(escape <<<"$text")"
        [ -z "$env" ] || printf '.br\nEnvironment: \\fB%s\\fR\n' "$env"
    done <<<"$table"
}

render_environment() {
    printf 'Each variable sets the flag of the same name (\\fBCACHETTE_MAX_MEMORY\\fR is \\fB\\-\\-max\\-memory\\fR):\n'
    while IFS=$'\t' read -r flag _ env; do
        [ -z "$env" ] || printf '.TP\n.B %s\n%s\n' "$env" "$(escape <<<"$flag")"
    done <<<"$table"
}

while IFS= read -r line; do
    case "$line" in
    @OPTIONS@) render_options ;;
    @ENVIRONMENT@) render_environment ;;
    *) line=${line//@VERSION@/$version}; printf '%s\n' "${line//@DATE@/$date}" ;;
    esac
done <"$template"
