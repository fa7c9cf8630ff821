#!/usr/bin/env bash
# Usage: hold_priority.sh COMMAND...
# Runs COMMAND in a session of its own whose scheduling group (autogroup)
# has niceness -20, and keeps every process under it at this script's
# niceness. For measurements on a shared machine (/work/tools/bench):
# - With kernel.sched_autogroup_enabled=1, CPU is first shared equally
#   between sessions and niceness only orders the processes within one:
#   a process at niceness -5 got 3 % of a core beside forty busy
#   sessions, 99 % once its own session's autogroup was at -20.
# - Chromium starts its zygote, network service and renderers at niceness
#   0 (backgrounded renderers at 5) whatever its parent's, and a daemon
#   that moves processes at niceness 0 to 19 would slow them mid-run;
#   Playwright starts Chromium in a session of its own, whose autogroup
#   is set to -20 too.
set -u
if [ "${HOLD_PRIORITY_SESSION:-}" != 1 ]; then
  HOLD_PRIORITY_SESSION=1 exec setsid --wait "$0" "$@"
fi
echo -20 > /proc/self/autogroup 2>/dev/null || echo "hold_priority: cannot set the autogroup's niceness (needs root)" >&2
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
  for p in $pids; do # Playwright starts Chromium in a session (autogroup) of its own
    { grep -q 'nice -20$' "/proc/$p/autogroup" || echo -20 > "/proc/$p/autogroup"; } 2>/dev/null
  done
  sleep 0.1
done
wait "$child"
