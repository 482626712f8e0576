#!/usr/bin/env bash
# Writes the environment file of cachette's systemd unit to stdout
# (/etc/default/cachette): every flag of BIN's --help (scripts/help-table.sh)
# as its CACHETTE_* variable, commented out, under its help text. The
# service's own directories are suggested for --data-dir and --log-file.
#
#   scripts/envfile.sh BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cat <<'HEAD'
# cachette's settings, read by its systemd unit (EnvironmentFile=), one
# CACHETTE_* variable a flag (man cachette). Each is commented out, so the
# default in its description holds; uncomment a line and give it a value,
# then: systemctl restart cachette
HEAD
"$here/help-table.sh" "$1" | while IFS=$'\t' read -r flag text env; do
    [ -n "$env" ] || continue
    case "$env" in
    CACHETTE_DATA_DIR) value=/var/lib/cachette ;; # the unit's StateDirectory=
    CACHETTE_LOG_FILE) value=/var/log/cachette/cachette.log ;; # its LogsDirectory= (else the journal)
    *) value= ;;
    esac
    printf '\n# %s: %s\n#%s=%s\n' "$flag" "$text" "$env" "$value"
done
