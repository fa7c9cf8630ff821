#!/usr/bin/env bash
# Usage: hold_priority.sh COMMAND...
# Runs COMMAND and keeps every process under it at this script's niceness.
# Chromium starts its zygote, network service and renderers at niceness 0
# (and backgrounded renderers at 5) whatever its parent's; on a machine
# whose other work runs at a lower priority (a measurement wrapper), those
# processes would otherwise compete with it, and a daemon that moves
# processes at niceness 0 to 19 would slow the renderer mid-measurement.
set -u
nice=$(ps -o ni= -p $$ | tr -d ' ')
"$@" &
child=$!
descendants() { # every process below $1
  ps -eo pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END { for (p in parent) for (q = p; q in parent; q = parent[q]) if (parent[q] == root) { print p; break } }'
}
while kill -0 "$child" 2>/dev/null; do
  pids=$(descendants $$ | tr '\n' ' ')
  [ -n "$pids" ] && renice -n "$nice" -p $pids >/dev/null 2>&1
  sleep 0.1
done
wait "$child"
