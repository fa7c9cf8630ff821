package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/risk"
)

type riskDecision struct {
	ID       string `json:"id"`
	EventID  string `json:"event_id"`
	Decision string `json:"decision"`
	Default  bool   `json:"default"`
	Reasons  []struct {
		Rule   string         `json:"rule"`
		Name   string         `json:"name"`
		Action string         `json:"action"`
		Values map[string]any `json:"values"`
	} `json:"reasons"`
	Features struct {
		Counters map[string]float64 `json:"counters"`
	} `json:"features"`
	Shadow []struct {
		Rule   string `json:"rule"`
		Action string `json:"action"`
	} `json:"shadow"`
	RuleErrors []struct {
		Rule  string `json:"rule"`
		Error string `json:"error"`
	} `json:"rule_errors"`
	Rules []struct {
		Rule    string `json:"rule"`
		Matched bool   `json:"matched"`
	} `json:"rules"`
	Event map[string]any `json:"event"`
}

func (a *testApp) riskEvent(t *testing.T, ev map[string]any) riskDecision {
	t.Helper()
	r := a.do("POST", "/api/v1/risk/events", a.key, ev)
	if r.status != 200 {
		t.Fatalf("POST /risk/events: %d %s", r.status, r.body)
	}
	var d riskDecision
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// activeRule creates a rule through the API and activates it.
func (a *testApp) activeRule(t *testing.T, name, action, mode, logic string) string {
	t.Helper()
	r := a.post("/api/v1/risk/rules", map[string]any{"name": name, "action": action, "mode": mode, "logic": json.RawMessage(logic)})
	id := r["id"].(string)
	if got := a.post("/api/v1/risk/rules/"+id+"/activate", nil); got["status"] != "active" {
		t.Fatalf("activate: %v", got)
	}
	return id
}

// restart stops the app and starts another on the same data directory
// and database.
func (a *testApp) restart(t *testing.T) *testApp {
	t.Helper()
	cfg := a.Config
	if err := a.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return &testApp{App: b, t: t, base: "http://" + b.Addr(), key: a.key}
}

func fieldsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var p struct {
		Errors []struct {
			Index *int   `json:"index"`
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range p.Errors {
		if e.Index != nil {
			out = append(out, fmt.Sprintf("%d:%s", *e.Index, e.Field))
		} else {
			out = append(out, e.Field)
		}
	}
	return out
}

// Issue 18's risk decisions over real HTTP on both engines: validation
// naming every bad field with nothing stored, rules and counters created
// through the API, a card-testing burst blocked, an account-takeover
// pattern sent to review, a shadow rule recorded without effect, a rule
// failing at evaluation skipped, decisions explained later.
func TestRiskDecisionsOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)

			// Bad events: every problem named, nothing stored.
			r := a.do("POST", "/api/v1/risk/events", a.key, map[string]any{"type": "order", "customer_id": "c1", "amount": 12.5, "currency": "EUR",
				"ip": "300.1.1.1", "colour": "red", "shipping_address": map[string]any{"country": "Germany"}})
			expectProblem(t, r, 400, "invalid_risk_event")
			got := strings.Join(fieldsOf(t, r.body), " ")
			for _, f := range []string{"amount", "ip", "colour", "shipping_address.country"} {
				if !strings.Contains(" "+got+" ", " "+f+" ") {
					t.Errorf("problem fields %q lack %s: %s", got, f, r.body)
				}
			}
			r = a.do("POST", "/api/v1/risk/events", a.key, []map[string]any{{"type": "login", "customer_id": "c1"}, {"type": "payment", "customer_id": "c1"}, {"type": "teleport"}})
			expectProblem(t, r, 400, "invalid_risk_event")
			got = strings.Join(fieldsOf(t, r.body), " ")
			for _, f := range []string{"1:amount", "1:currency", "2:type"} {
				if !strings.Contains(got, f) {
					t.Errorf("batch problem fields %q lack %s", got, f)
				}
			}
			if l := a.do("GET", "/api/v1/risk/decisions", a.key, nil); !strings.Contains(string(l.body), `"data":[]`) {
				t.Fatalf("a refused body stored something: %s", l.body)
			}

			// A tenant schema set over HTTP is kept under its type (the PUT
			// route once lost its {type} parameter) and applied to events.
			r = a.raw("PUT", "/api/v1/risk/event-schemas/order", a.key, "application/schema+json",
				`{"type":"object","required":["properties"],"properties":{"properties":{"required":["plan"]}}}`)
			if r.status != 204 {
				t.Fatalf("PUT event schema: %d %s", r.status, r.body)
			}
			if g := a.do("GET", "/api/v1/risk/event-schemas/order", a.key, nil); g.status != 200 || !strings.Contains(string(g.body), `"plan"`) {
				t.Fatalf("GET event schema: %d %s", g.status, g.body)
			}
			r = a.do("POST", "/api/v1/risk/events", a.key, map[string]any{"type": "order", "customer_id": "c1", "amount": 12.5, "currency": "EUR", "properties": map[string]any{}})
			expectProblem(t, r, 400, "invalid_risk_event")
			if d := a.do("DELETE", "/api/v1/risk/event-schemas/order", a.key, nil); d.status != 204 {
				t.Fatalf("DELETE event schema: %d %s", d.status, d.body)
			}

			// Bad rules and counters name their place.
			r = a.do("POST", "/api/v1/risk/rules", a.key, map[string]any{"name": "x", "action": "block", "logic": json.RawMessage(`{"and":[{">":[{"var":"counters.nope"},1]}]}`)})
			expectProblem(t, r, 400, "invalid_rule")
			if f := fieldsOf(t, r.body); len(f) != 1 || f[0] != "logic.and.>[0].var" {
				t.Fatalf("unknown variable problem fields %v: %s", f, r.body)
			}
			r = a.do("POST", "/api/v1/risk/rules", a.key, map[string]any{"name": "x", "action": "block", "logic": json.RawMessage(`{"teleport":[1]}`)})
			expectProblem(t, r, 400, "invalid_rule")
			r = a.do("POST", "/api/v1/risk/counters", a.key, map[string]any{"name": "c", "key": "shoe_size", "op": "count", "window": "10m"})
			expectProblem(t, r, 400, "invalid_counter")
			if f := fieldsOf(t, r.body); len(f) != 1 || f[0] != "key" {
				t.Fatalf("unknown identifier problem fields %v", f)
			}

			// Card testing: many cards on one device within minutes.
			a.post("/api/v1/risk/counters", map[string]any{"name": "cards_per_device_10m", "key": "device_id", "op": "distinct",
				"of": "card_fingerprint", "window": "10m", "event_types": []string{"payment"}})
			block := a.activeRule(t, "card testing", "block", "enforce", `{">":[{"var":"counters.cards_per_device_10m"},5]}`)
			shadow := a.activeRule(t, "big orders", "review", "shadow", `{">=":[{"var":"event.amount"},100]}`)
			var last riskDecision
			for i := range 6 {
				last = a.riskEvent(t, map[string]any{"type": "payment", "customer_id": "tester", "device_id": "dev-1",
					"card_fingerprint": fmt.Sprintf("card-%d", i), "amount": "1.00", "currency": "EUR"})
				if want := map[bool]string{true: "block", false: "allow"}[i == 5]; last.Decision != want {
					t.Fatalf("payment %d: %s (counters %v), want %s", i, last.Decision, last.Features.Counters, want)
				}
			}
			if len(last.Reasons) != 1 || last.Reasons[0].Rule != block || last.Reasons[0].Values["counters.cards_per_device_10m"] != 6.0 {
				t.Fatalf("block reasons %+v", last.Reasons)
			}
			// Another device is untouched.
			if d := a.riskEvent(t, map[string]any{"type": "payment", "customer_id": "other", "device_id": "dev-2", "card_fingerprint": "card-9",
				"amount": "150.00", "currency": "EUR"}); d.Decision != "allow" || len(d.Shadow) != 1 || d.Shadow[0].Rule != shadow {
				t.Fatalf("a big payment on another device: %+v (the shadow rule must be recorded, not enforced)", d)
			}

			// A rule failing at evaluation is skipped and reported.
			failing := a.activeRule(t, "runaway", "block", "enforce",
				`{">":[{"reduce":[{"var":"event.properties.xs"},{"+":[{"var":"accumulator"},1]},0]},5]}`)
			xs := make([]int, 12_000) // two steps each: over the budget of 20,000
			d := a.riskEvent(t, map[string]any{"type": "custom:import", "customer_id": "c2", "properties": map[string]any{"xs": xs}})
			if d.Decision != "allow" || len(d.RuleErrors) != 1 || d.RuleErrors[0].Rule != failing {
				t.Fatalf("a failing rule: %+v", d)
			}

			// The decision is explained later, with the event it judged.
			r = a.do("GET", "/api/v1/risk/decisions/"+last.ID, a.key, nil)
			var explained riskDecision
			_ = json.Unmarshal(r.body, &explained)
			if r.status != 200 || explained.Event["id"] != last.EventID || len(explained.Rules) < 2 ||
				!strings.HasPrefix(fmt.Sprint(explained.Event["device_id"]), "h1_") {
				t.Fatalf("GET decision: %d %s", r.status, r.body)
			}
			if strings.Contains(string(r.body), "dev-1") || strings.Contains(string(r.body), "card-5") {
				t.Fatalf("a stored decision shows an identifier in clear: %s", r.body)
			}

			// Account takeover: new device and IP, a password reset, then a
			// large order goes to review; the same order without the new
			// device does not.
			for _, c := range []map[string]any{
				{"name": "resets_per_customer_1d", "key": "customer_id", "op": "count", "window": "1d", "event_types": []string{"custom:password_reset"}},
				{"name": "devices_per_customer_1d", "key": "customer_id", "op": "distinct", "of": "device_id", "window": "24h"},
			} {
				a.post("/api/v1/risk/counters", c)
			}
			ato := a.activeRule(t, "account takeover", "review", "enforce", `{"and":[{"==":[{"var":"event.type"},"order"]},
				{">=":[{"var":"counters.resets_per_customer_1d"},1]},{">=":[{"var":"counters.devices_per_customer_1d"},2]},{">=":[{"var":"event.amount"},500]}]}`)
			send := func(typ, customer, device, ip, amount string) riskDecision {
				ev := map[string]any{"type": typ, "customer_id": customer, "device_id": device, "ip": ip}
				if amount != "" {
					ev["amount"], ev["currency"] = amount, "EUR"
				}
				return a.riskEvent(t, ev)
			}
			send("login", "victim", "laptop", "198.51.100.7", "")
			if d := send("order", "victim", "laptop", "198.51.100.7", "900.00"); d.Decision != "allow" {
				t.Fatalf("the owner's order: %+v", d)
			}
			send("login", "victim", "phone-x", "203.0.113.99", "")
			send("custom:password_reset", "victim", "phone-x", "203.0.113.99", "")
			if d := send("order", "victim", "phone-x", "203.0.113.99", "900.00"); d.Decision != "review" || d.Reasons[0].Rule != ato {
				t.Fatalf("the takeover's order: %+v", d)
			}
			send("custom:password_reset", "forgetful", "desk", "198.51.100.8", "")
			if d := send("order", "forgetful", "desk", "198.51.100.8", "900.00"); d.Decision != "allow" {
				t.Fatalf("a reset on a known device: %+v", d)
			}

			// Backtest: a draft that blocks payments of 100 or more would have
			// changed one decision (the 150.00 payment on dev-2).
			draft := a.post("/api/v1/risk/rules", map[string]any{"name": "big payments", "action": "block",
				"logic": json.RawMessage(`{"and":[{"==":[{"var":"event.type"},"payment"]},{">=":[{"var":"event.amount"},100]}]}`)})
			r = a.do("POST", "/api/v1/risk/backtests", a.key, map[string]any{"days": 1, "rules": []map[string]any{{"rule": draft["id"]}}})
			var bt struct {
				Events      int            `json:"events"`
				Changed     int            `json:"changed"`
				Transitions map[string]int `json:"transitions"`
				Examples    []struct {
					EventID string `json:"event_id"`
					From    string `json:"from"`
					To      string `json:"to"`
				} `json:"examples"`
			}
			_ = json.Unmarshal(r.body, &bt)
			if r.status != 200 || bt.Events != 15 || bt.Changed != 1 || bt.Transitions["allow→block"] != 1 || len(bt.Examples) != 1 || bt.Examples[0].To != "block" {
				t.Fatalf("backtest: %d %s", r.status, r.body)
			}
			if l := a.do("GET", "/api/v1/risk/rules/"+draft["id"].(string), a.key, nil); !strings.Contains(string(l.body), `"status":"draft"`) {
				t.Fatalf("a backtest changed the draft: %s", l.body)
			}

			// Abacus's own events feed the module: an end user created with a
			// disposable address is a registration, blocked by a rule.
			disposable := a.activeRule(t, "disposable e-mail", "block", "enforce",
				`{"and":[{"==":[{"var":"event.type"},"registration"]},{"in":[{"var":"event.email_domain"},["mailinator.com"]]}]}`)
			a.post("/api/v1/end-users", map[string]any{"email": "eve@mailinator.com"})
			var fed riskDecision
			waitFor(t, func() bool {
				l := a.do("GET", "/api/v1/risk/decisions?decision=block", a.key, nil)
				var page struct {
					Data []riskDecision `json:"data"`
				}
				_ = json.Unmarshal(l.body, &page)
				for _, d := range page.Data {
					if len(d.Reasons) > 0 && d.Reasons[0].Rule == disposable {
						fed = d
						return true
					}
				}
				return false
			})
			r = a.do("GET", "/api/v1/risk/decisions/"+fed.ID, a.key, nil)
			_ = json.Unmarshal(r.body, &fed)
			if fed.Event["source"] != "abacus" || fed.Event["type"] != "registration" || fed.Event["email_domain"] != "mailinator.com" ||
				!strings.HasPrefix(fmt.Sprint(fed.Event["email"]), "h1_") || fed.Event["end_user_id"] == nil {
				t.Fatalf("the fed registration: %s", r.body)
			}

			// Counters come back after a restart on the same data: the question
			// counts a seventh card on dev-1.
			a = a.restart(t)
			r = a.do("POST", "/api/v1/risk/decisions", a.key, map[string]any{"type": "payment", "customer_id": "tester", "device_id": "dev-1",
				"card_fingerprint": "card-7", "amount": "1.00", "currency": "EUR"})
			var q riskDecision
			_ = json.Unmarshal(r.body, &q)
			if r.status != 200 || q.Decision != "block" || q.Features.Counters["cards_per_device_10m"] != 7 || q.Features.Counters["devices_per_customer_1d"] != 1 {
				t.Fatalf("after a restart: %d %s", r.status, r.body)
			}
			// A batch's answer (beyond net/http's 2 KiB buffer) says its
			// length rather than coming in chunks.
			batch := make([]map[string]any, 8)
			for i := range batch {
				batch[i] = map[string]any{"type": "login", "customer_id": fmt.Sprint("batch-", i), "ip": "198.51.100.7"}
			}
			r = a.do("POST", "/api/v1/risk/events", a.key, batch)
			if r.status != 200 || len(r.body) <= 2048 || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
				t.Fatalf("a batch's answer: %d, Content-Length %q for %d bytes", r.status, r.header.Get("Content-Length"), len(r.body))
			}
			// One process on an embedded bus with no listener is the only risk
			// node: no stream of its events for other nodes.
			if _, err := a.Bus.JetStream().Stream(context.Background(), risk.PeerStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("stream %s on the only node: %v", risk.PeerStream, err)
			}
		})
	}
}

// Two nodes on one PostgreSQL database and one NATS server keep their
// counters in step: each counts the events the other stored.
func TestRiskCountersAcrossNodes(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	// Every node hashes identifiers under the same key.
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	a := start(t, db.Postgres, func(c *config.Config) { c.NATS.URL, c.Risk.HashKey = ns.ClientURL(), key })
	a.post("/api/v1/risk/counters", map[string]any{"name": "per_device", "key": "device_id", "op": "count", "window": "1h"})
	for range 3 {
		a.riskEvent(t, map[string]any{"type": "login", "customer_id": "c", "device_id": "shared"})
	}
	cfg := a.Config
	cfg.DataDir = t.TempDir()
	b := &testApp{App: app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)}), t: t, key: a.key}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	b.base = "http://" + b.Addr()
	for range 2 {
		b.riskEvent(t, map[string]any{"type": "login", "customer_id": "c", "device_id": "shared"})
	}
	a.riskEvent(t, map[string]any{"type": "login", "customer_id": "c", "device_id": "shared"})
	ask := func(n *testApp) float64 {
		r := n.do("POST", "/api/v1/risk/decisions", n.key, map[string]any{"type": "login", "customer_id": "c", "device_id": "shared"})
		var d riskDecision
		_ = json.Unmarshal(r.body, &d)
		return d.Features.Counters["per_device"]
	}
	// Six stored events; the question counts itself.
	waitFor(t, func() bool { return ask(a) == 7 && ask(b) == 7 })
}

// A risk event's customer_id is linked to the catalog customer with that
// external id (the event as explained carries its abacus_customer_id);
// an unknown id, or a customer's Abacus id given as customer_id, links
// to nothing.
func TestRiskEventsLinkCatalogCustomersByExternalID(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			linked := a.post("/api/v1/customers", map[string]any{"external_id": "crm-77", "name": "Linked GmbH", "currency": "EUR"})
			other := a.post("/api/v1/customers", map[string]any{"name": "No external id", "currency": "EUR"})
			for _, tt := range []struct{ customer, want string }{
				{"crm-77", linked["id"].(string)},
				{"crm-unknown", ""},
				{other["id"].(string), ""},
				{"crm-77", linked["id"].(string)}, // from the cache
			} {
				d := a.riskEvent(t, map[string]any{"type": "login", "customer_id": tt.customer})
				r := a.do("GET", "/api/v1/risk/decisions/"+d.ID, a.key, nil)
				var got riskDecision
				if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil {
					t.Fatalf("GET decision: %d %s", r.status, r.body)
				}
				if id, _ := got.Event["abacus_customer_id"].(string); id != tt.want {
					t.Errorf("customer_id %s linked to %q, want %q", tt.customer, id, tt.want)
				}
			}
		})
	}
}
