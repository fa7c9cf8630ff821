#!/usr/bin/env bash
# Risk decisions under open-loop load (issue 18, docs/benchmarks.md):
# builds abacus (or takes ABACUS_BIN), starts `abacus serve` (SQLite, or
# PostgreSQL with DATABASE_URL) with 10 velocity counters and 20 active
# rules, then drives POST /api/v1/risk/events with `abacus bench http` at
# each of RATES requests/s, each run followed by the bare net/http baseline
# on the same machine.
#
#   RATES="2000 10000" DURATION=20s RUNS=3 scripts/bench-risk.sh
#
# With FIXTURE=DIR the server starts from a copy of DIR/data: a tenant
# whose stored events make a link graph of ENTITIES entities (default
# 1,000,000; 4 per event: customer, device, card, e-mail), with the
# counters and rules already made. `FIXTURE=DIR scripts/bench-risk.sh
# prepare` builds it once (minutes; outside any measurement lock).
#
# BATCH=N sends N events per request (a batch body: an array), so each
# request asks for N decisions: decisions/s = RATES × N.
#
# EVENTS=varied (the default) sends 20,000 different events in turn:
# customers of the fixture's graph, devices, cards, IPs and e-mails spread
# over many values, so counters, the graph and the stored rows' indexes
# see real traffic. EVENTS=fixed sends one event over and over (the
# figures before 2026-12-07 were measured so).
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-${RATE:-10000}}
DURATION=${DURATION:-20s}
RUNS=${RUNS:-1}
CONNS=${CONNS:-32}
BATCH=${BATCH:-1}
EVENTS=${EVENTS:-varied}
ENTITIES=${ENTITIES:-1000000}
work=$(mktemp -d)
# BENCH_BIN=FILE drives the server with that build's generator (an older
# server's may lack --bodies-file).
# SERVE_LOG=FILE keeps the server's log (ABACUS_LOG_LEVEL=warn) after the run.
trap 'kill "${pid:-0}" 2>/dev/null || true; [ -z "${SERVE_LOG:-}" ] || cp "$work/serve.log" "$SERVE_LOG"; rm -rf "$work"' EXIT
bin=${ABACUS_BIN:-}
if [ -z "$bin" ]; then
  go build -o "$work/abacus" ./cmd/abacus
  bin=$work/abacus
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="abk_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
base="http://127.0.0.1:$port"
data=$work/data
if [ -n "${FIXTURE:-}" ] && [ "${1:-}" != prepare ]; then
  [ -d "$FIXTURE/data" ] || { echo "no fixture in $FIXTURE: run FIXTURE=$FIXTURE $0 prepare first" >&2; exit 2; }
  cp -r "$FIXTURE/data" "$data"
  key=$(cat "$FIXTURE/key")
  # The copy's pages are written back before the server starts, not
  # while it is measured (the first checkpoint's sync would flush them).
  sync
fi
start_server() {
  local args=(serve --data-dir "$data" --http-addr "127.0.0.1:$port")
  if [ -n "${DATABASE_URL:-}" ]; then args+=(--database-url "$DATABASE_URL"); fi
  ABACUS_BOOTSTRAP_API_KEY=$key ABACUS_LOG_LEVEL=warn "$bin" "${args[@]}" >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do curl -fs "$base/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "the server did not get ready:" >&2; tail -20 "$work/serve.log" >&2; exit 1
}
t0=$(date +%s.%N)
start_server
echo "ready in $(python3 -c "import time; print(round(time.time()-$t0, 1))") s (the counters and the graph rebuilt from the stored events)"
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
  'review|{"and":[{"var":"event.shipping_country"},{"!=":[{"var":"event.shipping_country"},{"var":["event.properties.billing_country","DE"]}]}]}'
  'block|{">":[{"var":"graph.linked_labelled_fraud"},0]}'
  'review|{">":[{"var":"graph.component_size"},1000]}'
  'review|{">=":[{"var":"score"},90]}'
  'allow|{"in":[{"var":"event.customer_id"},["vip-1","vip-2"]]}'
  'review|{"and":[{"missing":["event.device_id"]},{">":[{"var":"event.amount"},100]}]}'
  'block|{"<":[{"var":"event.amount"},0]}'
)
make_config() {
  for c in "${counters[@]}"; do post /api/v1/risk/counters "$c" >/dev/null; done
  local i=0 r action logic id
  for r in "${rules[@]}"; do
    i=$((i+1)); action=${r%%|*}; logic=${r#*|}
    id=$(post /api/v1/risk/rules "{\"name\":\"bench rule $i\",\"action\":\"$action\",\"logic\":$logic}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    post "/api/v1/risk/rules/$id/activate" '' >/dev/null
  done
}
if [ -z "${FIXTURE:-}" ] || [ "${1:-}" = prepare ]; then make_config; fi
if [ "${1:-}" = prepare ]; then
  # The graph: ENTITIES/4 stored events over the 30 days before now, each
  # naming a customer, device, card and e-mail of its own (hashes as
  # events store them), written straight into risk_events (what the group
  # commit writes; the bench's own events are the only ones decided).
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$data/abacus.db" "$ENTITIES" <<'PY'
import json, sqlite3, sys, time, datetime
db, n = sys.argv[1], int(sys.argv[2]) // 4
c = sqlite3.connect(db)
tenant = c.execute("SELECT tenant_id FROM risk_counters LIMIT 1").fetchone()[0]
now = time.time()
def rows():
    for i in range(n):
        at = now - 30 * 86400 * (n - i) / n
        t = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        eid = "rev_0fixture%015d" % i
        ev = {"id": eid, "type": "order", "time": t, "customer_id": "g-%d" % i, "device_id": "h1_gdev%d" % i,
              "card_fingerprint": "h1_gcard%d" % i, "email": "h1_gmail%d" % i, "email_domain": "example.com",
              "amount": "12.50", "currency": "EUR", "source": "api"}
        yield (tenant, eid, "order", int(at * 1e6), "g-%d" % i, json.dumps(ev), "rdec_0fixture%015d" % i, int(at * 1e6), "{}", "allow", "")
c.executemany("INSERT INTO risk_events (tenant_id, id, type, time, customer_id, data, decision_id, received_at, features, decision, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows())
c.commit()
print("fixture: %d stored events, %d graph entities, tenant %s" % (n, 4 * n, tenant))
PY
  mkdir -p "$FIXTURE"; rm -rf "$FIXTURE/data"; cp -r "$data" "$FIXTURE/data"; echo "$key" > "$FIXTURE/key"
  exit 0
fi
if [ "$EVENTS" = fixed ]; then
  cat >"$work/events.jsonl" <<'JSON'
{"type":"order","customer_id":"crm-4711","device_id":"dev-8f2c","ip":"203.0.113.7","email":"ana@example.com","card_fingerprint":"fp_2b9e","card_bin":"424242","card_last4":"4242","shipping_address":{"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},"amount":"249.00","currency":"EUR","properties":{"items":3}}
JSON
else
  # Varied events, as real traffic is: customers of the fixture's graph
  # (g-N; 1 in 10 new), each with a device, card, IP, e-mail and address of
  # its own most of the time (1 in 50 events from a shared device or IP, as behind
  # a NAT or on a family computer), orders, payments and logins; the same
  # 20,000 in turn (seeded). Counters, the graph and the stored rows'
  # indexes see many keys, not one.
  python3 - "$work/events.jsonl" "$ENTITIES" <<'PY'
import json, random, sys
rng = random.Random(18)
customers = max(int(sys.argv[2]) // 4, 1)
def event():
    c = rng.randrange(customers)
    cust = "g-%d" % c if rng.random() < 0.9 else "new-%d" % rng.randrange(1_000_000)
    own = "%s-%d" % (cust, rng.randrange(2))
    shared = rng.random() < 0.02
    typ = rng.choices(["order", "payment", "login"], [6, 3, 1])[0]
    ev = {"type": typ, "customer_id": cust, "device_id": "dev-shared-%d" % rng.randrange(500) if shared else "dev-" + own,
          "ip": "198.51.%d.%d" % (rng.randrange(256), rng.randrange(256)) if shared else "10.%d.%d.%d" % (c % 256, c // 256 % 256, c // 65536),
          "email": "%s@%s" % (cust, rng.choice(["example.com", "mail.test", "post.example"]))}
    if typ != "login":
        ev.update({"card_fingerprint": "fp-" + own, "card_bin": rng.choice(["424242", "555555", "378282"]),
                   "card_last4": "%04d" % (c % 10_000), "amount": "%d.%02d" % (rng.randrange(1, 500), rng.randrange(100)), "currency": "EUR",
                   "shipping_address": {"line1": "%d Main St" % (c % 1000 + 1), "city": "Berlin", "postal_code": "%05d" % (10000 + c // 1000),
                                        "country": "FR" if rng.random() < 0.02 else "DE"},
                   "properties": {"items": rng.randrange(1, 6), "billing_country": "DE"}})
    return ev
with open(sys.argv[1], "w") as f:
    for _ in range(20_000):
        f.write(json.dumps(event(), separators=(",", ":")) + "\n")
PY
fi
if [ "$BATCH" -gt 1 ]; then
  python3 - "$work/events.jsonl" "$BATCH" <<'PY'
import sys
lines, n = open(sys.argv[1]).read().splitlines(), int(sys.argv[2])
if len(lines) == 1:
    lines = lines * n
with open(sys.argv[1], "w") as f:
    for i in range(0, len(lines) - n + 1, n):
        f.write("[" + ",".join(lines[i:i + n]) + "]\n")
PY
  echo "$BATCH events per request: decisions/s = requests/s × $BATCH"
fi
echo "abacus serve (pid $pid, ${DATABASE_URL:+PostgreSQL}${DATABASE_URL:-SQLite}) with ${#counters[@]} counters and ${#rules[@]} active rules${FIXTURE:+, graph fixture $FIXTURE}; $EVENTS events"
echo "server memory after start: $(grep VmRSS "/proc/$pid/status")"
# The server's CPU time (user+sys, clock ticks) and decisions stored, before and after: CPU per decision.
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
stored() { sqlite3 "$data/abacus.db" "SELECT COUNT(*) FROM risk_events WHERE body <> ''" 2>/dev/null || echo 0; }
tick=$(getconf CLK_TCK)
for rate in $RATES; do
  cpu0=$(cpu); n0=$(stored)
  echo "load average before: $(cat /proc/loadavg)"
  "${BENCH_BIN:-$bin}" bench http --url "$base/api/v1/risk/events" --method POST -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' --bodies-file "$work/events.jsonl" --rate "$rate" --duration "$DURATION" --runs "$RUNS" --conns "$CONNS" ${BENCH_EXTRA:-} || echo "(bench http: some requests were not answered in time)"
  echo "load average after: $(cat /proc/loadavg)"
  cpu1=$(cpu); n1=$(stored)
  echo "rate $rate: server CPU $(( (cpu1 - cpu0) * 1000 / tick )) ms for $((n1 - n0)) stored decisions: $(( (cpu1 - cpu0) * 1000000 / tick / (n1 - n0 > 0 ? n1 - n0 : 1) )) µs each (the baseline runs in its own process, not the server)"
done
echo "server memory at the end: $(grep VmRSS "/proc/$pid/status")"
echo "decisions stored: $(sqlite3 "$data/abacus.db" "SELECT group_concat(decision || ' ' || n, ', ') FROM (SELECT decision, COUNT(*) n FROM risk_events WHERE body <> '' GROUP BY decision)" 2>/dev/null)"
echo "deciding rules: $(sqlite3 "$data/abacus.db" "SELECT group_concat(r || ' ' || n, ', ') FROM (SELECT json_extract(body, '$.reasons[0].name') r, COUNT(*) n FROM risk_events WHERE body <> '' AND decision <> 'allow' GROUP BY r ORDER BY n DESC)" 2>/dev/null)"
