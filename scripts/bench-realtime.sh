#!/usr/bin/env bash
# One realtime load scenario (issue 16, docs/benchmarks.md) against a fresh
# `abacus serve` (all roles, embedded NATS, SQLite; with NODES=2 two serve
# processes sharing PostgreSQL ($DATABASE_URL, a scratch database is made)
# and node 1's embedded NATS), then, with BASELINE=1, the same scenario
# against the bare realtime baseline (`abacus bench serve-realtime`).
# NODES=3 (or more) starts further nodes the same way. With NODES>1 the
# idle scenario runs one client process per node, all started together
# (each with its own --conns, so one process per side stays under the file
# limit), and samples every node's abacus_realtime_connections each second
# to show how many were open at once across the nodes.
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
urls=("$url1")
if [ "$NODES" -ge 2 ]; then
  db=rtbench_$$; psql "${DATABASE_URL:?NODES>1 needs DATABASE_URL}" -qc "CREATE DATABASE $db" >/dev/null
  dburl=${DATABASE_URL/\/postgres\?//$db?}
  natsp=$(freeport)
  "$bin" serve --data-dir "$work/n1" --http-addr "127.0.0.1:$p1" --database-url "$dburl" --nats-listen "127.0.0.1:$natsp" \
    --realtime-node rt-1 >"$work/n1.log" 2>&1 & pids+=($!)
  wait_ready "$url1"
  for i in $(seq 2 "$NODES"); do
    pn=$(freeport); urln="http://127.0.0.1:$pn"
    "$bin" serve --data-dir "$work/n$i" --http-addr "127.0.0.1:$pn" --database-url "$dburl" --nats-url "nats://127.0.0.1:$natsp" \
      --realtime-node "rt-$i" >"$work/n$i.log" 2>&1 & pids+=($!)
    wait_ready "$urln"
    urls+=("$urln")
  done
  args=(--url2 "${urls[1]}")
else
  "$bin" serve --data-dir "$work/n1" --http-addr "127.0.0.1:$p1" >"$work/n1.log" 2>&1 & pids+=($!)
  wait_ready "$url1"
fi
echo "== abacus serve ($NODES node(s), $(git rev-parse --short HEAD 2>/dev/null || echo '?')), load $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
# live prints, per node, the abacus_realtime_connections gauge (summed over
# its label sets) and the total.
live() {
  local tot=0 line="" n
  for u in "${urls[@]}"; do
    n=$(curl -fs --max-time 2 "$u/metrics" 2>/dev/null | awk '/^abacus_realtime_connections[{ ]/ {s+=$NF} END {printf "%d", s}')
    n=${n:-0}; tot=$((tot + n)); line+=" $n"
  done
  echo "$(date -u +%T)${line} = $tot"
}
if [ "$NODES" -ge 2 ] && [ "${1:-}" = idle ]; then
  # One client per node, started together; the sampler shows the overlap.
  cpids=()
  for i in "${!urls[@]}"; do
    "$bin" bench realtime --quiet --url "${urls[$i]}" --api-key "$key" "$@" >"$work/c$((i + 1)).out" 2>&1 & cpids+=($!)
  done
  ( while :; do live; sleep 1; done ) >"$work/live.txt" 2>&1 & sampler=$!
  for i in "${!cpids[@]}"; do
    crc=0; wait "${cpids[$i]}" || crc=$?
    echo "-- client $((i + 1)) → node rt-$((i + 1)) (${urls[$i]}), exit $crc, ended $(date -u +%T)"
    cat "$work/c$((i + 1)).out"
    [ "$crc" = 0 ] || rc=$crc
  done
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  echo "-- live connections per node (abacus_realtime_connections, sampled each second: time rt-1 … = total)"
  awk '$NF > 0' "$work/live.txt"
  echo "most open at once: $(awk '$NF > m {m = $NF; t = $0} END {print (m ? t : 0)}' "$work/live.txt")"
else
  "$bin" bench realtime --quiet --url "$url1" "${args[@]}" --api-key "$key" "$@" || rc=$?
fi
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true; pids=()
if [ "$NODES" -ge 2 ]; then psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; fi
if [ "${BASELINE:-0}" = 1 ]; then
  pb=$(freeport); "$bin" bench serve-realtime --addr "127.0.0.1:$pb" --api-key key >/dev/null 2>&1 & pids+=($!)
  sleep 0.3
  bargs=()
  # Two nodes: the baseline is one bare server named twice (it has no bus).
  if [ "$NODES" -ge 2 ]; then bargs=(--url2 "http://127.0.0.1:$pb"); fi
  echo "== bare baseline (bench serve-realtime: nothing stored, no bus), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bin" bench realtime --quiet --url "http://127.0.0.1:$pb" "${bargs[@]}" --api-key key "$@" || echo "(baseline exit $?)"
fi
exit $rc
