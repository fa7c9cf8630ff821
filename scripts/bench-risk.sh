#!/usr/bin/env bash
# Risk decisions under open-loop load (issue 18, docs/benchmarks.md):
# builds abacus, starts `abacus serve` (SQLite, or PostgreSQL with
# DATABASE_URL) with 10 velocity counters and 20 active rules, then drives
# POST /api/v1/risk/events with `abacus bench http` at RATE requests/s,
# each run followed by the bare net/http baseline on the same machine.
#
#   RATE=10000 DURATION=20s RUNS=3 scripts/bench-risk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-10000}
DURATION=${DURATION:-20s}
RUNS=${RUNS:-1}
CONNS=${CONNS:-32}
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/abacus" ./cmd/abacus
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="abk_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
base="http://127.0.0.1:$port"
args=(serve --data-dir "$work/data" --http-addr "127.0.0.1:$port")
if [ -n "${DATABASE_URL:-}" ]; then args+=(--database-url "$DATABASE_URL"); fi
ABACUS_BOOTSTRAP_API_KEY=$key ABACUS_LOG_LEVEL=warn "$work/abacus" "${args[@]}" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
post() { curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$2" "$base$1"; }
counters=(
  '{"name":"cards_per_device_10m","key":"device_id","op":"distinct","of":"card_fingerprint","window":"10m","event_types":["payment"]}'
  '{"name":"events_per_ip_1h","key":"ip","op":"count","window":"1h"}'
  '{"name":"amount_per_customer_7d","key":"customer_id","op":"sum","of":"amount","window":"7d"}'
  '{"name":"devices_per_customer_1d","key":"customer_id","op":"distinct","of":"device_id","window":"1d"}'
  '{"name":"ips_per_customer_1d","key":"customer_id","op":"distinct","of":"ip","window":"1d"}'
  '{"name":"emails_per_device_1d","key":"device_id","op":"distinct","of":"email","window":"1d"}'
  '{"name":"payments_per_card_1h","key":"card_fingerprint","op":"count","window":"1h","event_types":["payment"]}'
  '{"name":"failed_logins_per_ip_10m","key":"ip","op":"count","window":"10m","event_types":["login"]}'
  '{"name":"orders_per_domain_1d","key":"email_domain","op":"count","window":"1d","event_types":["order"]}'
  '{"name":"amount_per_card_1d","key":"card_fingerprint","op":"sum","of":"amount","window":"1d"}'
)
for c in "${counters[@]}"; do post /api/v1/risk/counters "$c" >/dev/null; done
rules=(
  'block|{">":[{"var":"counters.cards_per_device_10m"},1000000]}'
  'block|{">":[{"var":"counters.events_per_ip_1h"},1000000000]}'
  'review|{">":[{"var":"counters.amount_per_customer_7d"},1e15]}'
  'review|{"and":[{">=":[{"var":"counters.devices_per_customer_1d"},5]},{">":[{"var":"event.amount"},500]}]}'
  'block|{">=":[{"var":"counters.ips_per_customer_1d"},20]}'
  'review|{">=":[{"var":"counters.emails_per_device_1d"},10]}'
  'block|{">":[{"var":"counters.payments_per_card_1h"},1e12]}'
  'block|{">":[{"var":"counters.failed_logins_per_ip_10m"},50]}'
  'review|{">":[{"var":"counters.orders_per_domain_1d"},1e12]}'
  'review|{">":[{"var":"counters.amount_per_card_1d"},1e15]}'
  'block|{"in":[{"var":"event.email_domain"},["mailinator.com","guerrillamail.com","10minutemail.com"]]}'
  'review|{"and":[{"==":[{"var":"event.type"},"order"]},{">":[{"var":"event.amount"},10000]}]}'
  'block|{"==":[{"var":"event.card_bin"},"999999"]}'
  'review|{"!=":[{"var":"event.shipping_country"},{"var":"event.properties.billing_country","default":"DE"}]}'
  'block|{">":[{"var":"graph.linked_labelled_fraud"},0]}'
  'review|{">":[{"var":"graph.component_size"},1000]}'
  'review|{">=":[{"var":"score"},90]}'
  'allow|{"in":[{"var":"event.customer_id"},["vip-1","vip-2"]]}'
  'review|{"and":[{"missing":["event.device_id"]},{">":[{"var":"event.amount"},100]}]}'
  'block|{"<":[{"var":"event.amount"},0]}'
)
i=0
for r in "${rules[@]}"; do
  i=$((i+1)); action=${r%%|*}; logic=${r#*|}
  id=$(post /api/v1/risk/rules "{\"name\":\"bench rule $i\",\"action\":\"$action\",\"logic\":$logic}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  post "/api/v1/risk/rules/$id/activate" '' >/dev/null
done
cat >"$work/event.json" <<'JSON'
{"type":"order","customer_id":"crm-4711","device_id":"dev-8f2c","ip":"203.0.113.7","email":"ana@example.com","card_fingerprint":"fp_2b9e","card_bin":"424242","card_last4":"4242","shipping_address":{"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},"amount":"249.00","currency":"EUR","properties":{"items":3}}
JSON
echo "abacus serve (pid $pid, ${DATABASE_URL:+PostgreSQL}${DATABASE_URL:-SQLite}) with ${#counters[@]} counters and ${#rules[@]} active rules"
# The server's CPU time (user+sys, clock ticks) and decisions stored, before and after: CPU per decision.
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)
cpu0=$(cpu)
echo "load average before: $(cat /proc/loadavg)"
"$work/abacus" bench http --url "$base/api/v1/risk/events" --method POST -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' --body-file "$work/event.json" --rate "$RATE" --duration "$DURATION" --runs "$RUNS" --conns "$CONNS" || echo "(bench http: some requests were not answered in time)"
echo "load average after: $(cat /proc/loadavg)"
cpu1=$(cpu)
n=$(sqlite3 "$work/data/abacus.db" "SELECT COUNT(*) FROM risk_events" 2>/dev/null || echo "?")
echo "server CPU: $(( (cpu1 - cpu0) * 1000 / tick )) ms for $n stored events (the baseline runs in the bench process, not the server)"
