#!/usr/bin/env bash
# One realtime load scenario (issue 16, docs/benchmarks.md) against a fresh
# `abacus serve` (all roles, embedded NATS, SQLite; with NODES=2 two serve
# processes sharing PostgreSQL ($DATABASE_URL, a scratch database is made)
# and node 1's embedded NATS), then, with BASELINE=1, the same scenario
# against the bare realtime baseline (`abacus bench serve-realtime`).
# Build first, outside the measurement lock:
#
#   go build -o /tmp/abacus ./cmd/abacus
#   ABACUS_BIN=/tmp/abacus BASELINE=1 /work/tools/bench rt -- scripts/bench-realtime.sh direct --conns 10000 --rate 5000 --duration 20s
set -euo pipefail
bin=${ABACUS_BIN:?build abacus and set ABACUS_BIN}
NODES=${NODES:-1}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
key="abk_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ABACUS_BOOTSTRAP_API_KEY=$key ABACUS_LOG_LEVEL=warn
wait_ready() { for _ in $(seq 1 300); do curl -fs "$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no readyz at $1" >&2; return 1; }
p1=$(freeport); url1="http://127.0.0.1:$p1"; args=()
if [ "$NODES" = 2 ]; then
  db=rtbench_$$; psql "${DATABASE_URL:?NODES=2 needs DATABASE_URL}" -qc "CREATE DATABASE $db" >/dev/null
  dburl=${DATABASE_URL/\/postgres\?//$db?}
  natsp=$(freeport)
  "$bin" serve --data-dir "$work/n1" --http-addr "127.0.0.1:$p1" --database-url "$dburl" --nats-listen "127.0.0.1:$natsp" \
    --realtime-node rt-1 >"$work/n1.log" 2>&1 & pids+=($!)
  wait_ready "$url1"
  p2=$(freeport); url2="http://127.0.0.1:$p2"
  "$bin" serve --data-dir "$work/n2" --http-addr "127.0.0.1:$p2" --database-url "$dburl" --nats-url "nats://127.0.0.1:$natsp" \
    --realtime-node rt-2 >"$work/n2.log" 2>&1 & pids+=($!)
  wait_ready "$url2"
  args=(--url2 "$url2")
else
  "$bin" serve --data-dir "$work/n1" --http-addr "127.0.0.1:$p1" >"$work/n1.log" 2>&1 & pids+=($!)
  wait_ready "$url1"
fi
echo "== abacus serve ($NODES node(s), $(git rev-parse --short HEAD 2>/dev/null || echo '?')), load $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
"$bin" bench realtime --quiet --url "$url1" "${args[@]}" --api-key "$key" "$@" || rc=$?
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true; pids=()
if [ "$NODES" = 2 ]; then psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; fi
if [ "${BASELINE:-0}" = 1 ]; then
  pb=$(freeport); "$bin" bench serve-realtime --addr "127.0.0.1:$pb" --api-key key >/dev/null 2>&1 & pids+=($!)
  sleep 0.3
  bargs=()
  # Two nodes: the baseline is one bare server named twice (it has no bus).
  if [ "$NODES" = 2 ]; then bargs=(--url2 "http://127.0.0.1:$pb"); fi
  echo "== bare baseline (bench serve-realtime: nothing stored, no bus), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bin" bench realtime --quiet --url "http://127.0.0.1:$pb" "${bargs[@]}" --api-key key "$@" || echo "(baseline exit $?)"
fi
exit $rc
