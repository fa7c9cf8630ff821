#!/usr/bin/env bash
# The dashboard's first-load figure (docs/benchmarks.md), in two steps so
# the slow one stays outside a measurement lock:
#
#   measure_first_load.sh prepare BINARY DIR   seed DIR with the demo data (3 days of usage)
#   measure_first_load.sh measure BINARY DIR   serve a copy of DIR with BINARY, run
#                                              measure_first_load.mjs (RUNS, default 7), stop
#
# BINARY is an abacus built with `go build ./cmd/abacus` (its dashboard is
# the embedded dist). The owner is owner@demo.test. Port 18431 on loopback.
set -euo pipefail
cmd=$1 bin=$2 dir=$3
here=$(cd "$(dirname "$0")" && pwd)
addr=127.0.0.1:18431
email=owner@demo.test
password='correct horse battery staple 42'

serve() { # serve DATA_DIR: starts abacus in the background, waits until ready
  ABACUS_HTTP_ADDR=$addr ABACUS_DATA_DIR=$1 ABACUS_BOOTSTRAP_ADMIN_EMAIL=$email \
    ABACUS_BOOTSTRAP_ADMIN_PASSWORD=$password "$bin" serve >"$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    curl -fs "http://$addr/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "abacus did not become ready; see $1.log" >&2
  return 1
}
pid=
stop() { [ -z "$pid" ] || { kill "$pid" && wait "$pid"; } || true; }

case $cmd in
prepare)
  rm -rf "$dir" && mkdir -p "$dir"
  serve "$dir"
  trap stop EXIT
  key=$(grep -Eo 'abk_[a-z0-9]{20,}' "$dir.log" | head -1)
  "$bin" demo --url "http://$addr" --api-key "$key" --usage-days 3
  ;;
measure)
  # The server, node and Chromium all run in hold_priority.sh's session.
  [ "${HOLD_PRIORITY_SESSION:-}" = 1 ] || exec "$here/hold_priority.sh" "$0" "$@"
  copy=$(mktemp -d)/data
  cp -a "$dir" "$copy"
  trap 'stop; rm -rf "$(dirname "$copy")"' EXIT
  serve "$copy"
  ABACUS_URL=http://$addr ABACUS_EMAIL=$email ABACUS_PASSWORD=$password node "$here/measure_first_load.mjs"
  ;;
*)
  echo "usage: $0 prepare|measure BINARY DIR" >&2
  exit 2
  ;;
esac
