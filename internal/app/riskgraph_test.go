package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

type riskGraphAnswer struct {
	Nodes []struct {
		ID, Kind, Key, Label string
		Hops                 int
	} `json:"nodes"`
	Edges []struct {
		From, To string
	} `json:"edges"`
	Truncated bool `json:"truncated"`
	Features  struct {
		LinkedAccounts      int `json:"linked_accounts"`
		LinkedLabelledFraud int `json:"linked_labelled_fraud"`
	} `json:"features"`
}

func (a *testApp) customerGraph(t *testing.T, id, query string) riskGraphAnswer {
	t.Helper()
	r := a.do("GET", "/api/v1/risk/customers/"+id+"/graph"+query, a.key, nil)
	if r.status != 200 {
		t.Fatalf("GET graph of %s: %d %s", id, r.status, r.body)
	}
	var g riskGraphAnswer
	if err := json.Unmarshal(r.body, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g riskGraphAnswer) keys() []string {
	var out []string
	for _, n := range g.Nodes {
		if n.Kind == "customer" {
			out = append(out, fmt.Sprintf("%s:%s:%s:%d", n.Kind, n.Key, n.Label, n.Hops))
		} else {
			out = append(out, fmt.Sprintf("%s:%d", n.Kind, n.Hops))
		}
	}
	slices.Sort(out)
	return out
}

// TestRiskRingBlockedThroughLinkedLabelledFraud is issue 18's third fraud
// pattern: a ring of customers sharing devices with a customer whose
// chargeback was lost is blocked through graph.linked_labelled_fraud, by a
// rule created through the API; the graph (and the label) survive a
// restart, rebuilt from the stored events.
func TestRiskRingBlockedThroughLinkedLabelledFraud(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			dir, url := t.TempDir(), ""
			same := func(c *config.Config) {
				c.DataDir = dir
				if url == "" {
					url = c.Database.URL
				}
				c.Database.URL = url
			}
			a := start(t, engine, same)
			rule := a.activeRule(t, "linked to fraud", "block", "enforce", `{">=":[{"var":"graph.linked_labelled_fraud"},1]}`)

			// f0 signs up on dev-0; the ring r1..r3 chains devices to it.
			a.riskEvent(t, map[string]any{"type": "registration", "customer_id": "f0", "device_id": "dev-0", "email": "f0@mail.example"})
			a.riskEvent(t, map[string]any{"type": "registration", "customer_id": "r1", "device_id": "dev-0"})
			a.riskEvent(t, map[string]any{"type": "login", "customer_id": "r1", "device_id": "dev-1", "ip": "203.0.113.7"})
			a.riskEvent(t, map[string]any{"type": "registration", "customer_id": "r2", "device_id": "dev-1"})
			a.riskEvent(t, map[string]any{"type": "login", "customer_id": "r2", "device_id": "dev-2"})
			a.riskEvent(t, map[string]any{"type": "registration", "customer_id": "r3", "device_id": "dev-2"})
			a.riskEvent(t, map[string]any{"type": "registration", "customer_id": "c9", "device_id": "dev-9"})
			if d := a.riskEvent(t, map[string]any{"type": "order", "customer_id": "r3", "device_id": "dev-2", "amount": "20.00", "currency": "EUR"}); d.Decision != "allow" {
				t.Fatalf("before any label, r3's order: %+v", d)
			}

			// f0 loses a chargeback: the dispute event labels it fraud.
			a.riskEvent(t, map[string]any{"type": "dispute", "customer_id": "f0", "amount": "50.00", "currency": "EUR", "properties": map[string]any{"status": "lost"}})
			labels := a.do("GET", "/api/v1/risk/labels?label=fraud", a.key, nil)
			if !strings.Contains(string(labels.body), `"customer_id":"f0","label":"fraud","source":"dispute"`) {
				t.Fatalf("labels after the lost dispute: %s", labels.body)
			}

			check := func(a *testApp) {
				t.Helper()
				for _, c := range []string{"r1", "r2", "r3"} {
					d := a.riskEvent(t, map[string]any{"type": "order", "customer_id": c, "amount": "20.00", "currency": "EUR"})
					if d.Decision != "block" || len(d.Reasons) == 0 || d.Reasons[0].Rule != rule {
						t.Fatalf("%s's order: %+v", c, d)
					}
					if v := d.Reasons[0].Values["graph.linked_labelled_fraud"]; v != 1.0 {
						t.Fatalf("%s: reason values %v", c, d.Reasons[0].Values)
					}
				}
				if d := a.riskEvent(t, map[string]any{"type": "order", "customer_id": "c9", "amount": "20.00", "currency": "EUR"}); d.Decision != "allow" {
					t.Fatalf("c9, not linked: %+v", d)
				}
				// A newcomer on a ring device, asked as a pure question.
				r := a.do("POST", "/api/v1/risk/decisions", a.key, map[string]any{"type": "registration", "customer_id": "n1", "device_id": "dev-1"})
				if r.status != 200 || r.json(t)["decision"] != "block" {
					t.Fatalf("newcomer on dev-1: %d %s", r.status, r.body)
				}
			}
			check(a)

			// r3 -dev-2- r2 -dev-1- r1 -dev-0- f0 (-email); r1 -ip
			g := a.customerGraph(t, "r3", "?hops=6")
			want := []string{"customer:f0:fraud:6", "customer:r1::4", "customer:r2::2", "customer:r3::0", "device:1", "device:3", "device:5", "ip:5"}
			if got := g.keys(); fmt.Sprint(got) != fmt.Sprint(want) || len(g.Edges) != 7 {
				t.Fatalf("graph of r3: %v, %d edges; want %v, 7 edges", got, len(g.Edges), want)
			}
			if g.Features.LinkedLabelledFraud != 1 || g.Features.LinkedAccounts != 3 || g.Truncated {
				t.Fatalf("graph of r3: %+v", g)
			}
			if n := a.customerGraph(t, "r3", "?hops=1"); len(n.Nodes) != 2 || len(n.Edges) != 1 {
				t.Fatalf("1 hop from r3: %+v", n)
			}
			if n := a.customerGraph(t, "r3", "?hops=6&limit=3"); len(n.Nodes) != 3 || !n.Truncated {
				t.Fatalf("limit 3: %+v", n)
			}
			expectProblem(t, a.do("GET", "/api/v1/risk/customers/nobody/graph", a.key, nil), 404, "risk_customer_not_found")
			expectProblem(t, a.do("GET", "/api/v1/risk/customers/r3/graph?hops=9", a.key, nil), 400, "invalid_request")

			// Restart on the same data: the graph is rebuilt from the stored
			// events and labels, and answers exactly as before.
			if err := a.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			b := start(t, engine, same)
			b.key = a.key
			check(b)
			if g2 := b.customerGraph(t, "r3", "?hops=6"); fmt.Sprint(g2.keys()) != fmt.Sprint(g.keys()) || len(g2.Edges) != len(g.Edges) {
				t.Fatalf("graph after restart:\n%v\nbefore:\n%v", g2.keys(), g.keys())
			}
		})
	}
}

// TestRiskListsCasesAndScore: a block list hit blocks as a reason, a watch
// list is a rule variable, a review decision opens a case that is
// assigned, commented on and resolved with a label; the score is the
// heuristic's, with its reasons, until there are enough labels to train.
func TestRiskListsCasesAndScore(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)

			// Lists.
			block := a.post("/api/v1/risk/lists", map[string]any{"name": "blocked_devices", "action": "block"})
			watch := a.post("/api/v1/risk/lists", map[string]any{"name": "watched_domains", "action": "watch"})
			expectProblem(t, a.do("POST", "/api/v1/risk/lists", a.key, map[string]any{"name": "blocked_devices", "action": "block"}), 409, "list_exists")
			r := a.do("POST", "/api/v1/risk/lists/"+block["id"].(string)+"/entries", a.key, map[string]any{"kind": "shoe_size", "value": "x", "expires_at": "2001-01-01T00:00:00Z"})
			expectProblem(t, r, 400, "invalid_request")
			a.post("/api/v1/risk/lists/"+block["id"].(string)+"/entries", map[string]any{"kind": "device_id", "value": "dev-bad"})
			e := a.post("/api/v1/risk/lists/"+watch["id"].(string)+"/entries", map[string]any{"kind": "email_domain", "value": "Mailinator.example"})
			if e["value"] != "mailinator.example" {
				t.Fatalf("entry %v", e)
			}
			d := a.riskEvent(t, map[string]any{"type": "login", "customer_id": "c1", "device_id": "dev-bad"})
			if d.Decision != "block" || len(d.Reasons) != 1 || d.Reasons[0].Rule != "list:blocked_devices" {
				t.Fatalf("block list hit: %+v", d)
			}
			if d := a.riskEvent(t, map[string]any{"type": "login", "customer_id": "c1", "device_id": "dev-good"}); d.Decision != "allow" {
				t.Fatalf("no hit: %+v", d)
			}
			a.activeRule(t, "throwaway mail, big order", "review", "enforce",
				`{"and":[{"var":"lists.watched_domains"},{">=":[{"var":"event.amount"},100]}]}`)
			if d := a.riskEvent(t, map[string]any{"type": "order", "customer_id": "c2", "email": "x@mailinator.example", "amount": "20.00", "currency": "EUR"}); d.Decision != "allow" {
				t.Fatalf("small order: %+v", d)
			}
			rev := a.riskEvent(t, map[string]any{"type": "order", "customer_id": "c2", "email": "x@mailinator.example", "amount": "150.00", "currency": "EUR"})
			if rev.Decision != "review" {
				t.Fatalf("watched domain, big order: %+v", rev)
			}

			// The review decision opened a case.
			list := a.do("GET", "/api/v1/risk/cases?status=open", a.key, nil).json(t)
			cases := list["data"].([]any)
			if len(cases) != 1 || cases[0].(map[string]any)["customer_id"] != "c2" || cases[0].(map[string]any)["decision_id"] != rev.ID {
				t.Fatalf("open cases: %v", list)
			}
			id := cases[0].(map[string]any)["id"].(string)
			a.post("/api/v1/risk/cases/"+id+"/assign", map[string]any{"assignee": "ana@example.com"})
			a.post("/api/v1/risk/cases/"+id+"/comments", map[string]any{"body": "called the customer"})
			if l := a.do("GET", "/api/v1/risk/cases?assignee=none", a.key, nil).json(t); len(l["data"].([]any)) != 0 {
				t.Fatalf("unassigned: %v", l)
			}
			got := a.post("/api/v1/risk/cases/"+id+"/resolve", map[string]any{"label": "legitimate"})
			if got["status"] != "resolved" || got["resolution"] != "legitimate" || got["assignee"] != "ana@example.com" ||
				len(got["comments"].([]any)) != 1 {
				t.Fatalf("resolved case: %v", got)
			}
			expectProblem(t, a.do("POST", "/api/v1/risk/cases/"+id+"/resolve", a.key, map[string]any{"label": "fraud"}), 409, "case_resolved")
			expectProblem(t, a.do("GET", "/api/v1/risk/cases/rcase_nope", a.key, nil), 404, "risk_case_not_found")
			if l := a.do("GET", "/api/v1/risk/labels", a.key, nil); !strings.Contains(string(l.body), `"customer_id":"c2","label":"legitimate","source":"review"`) {
				t.Fatalf("labels: %s", l.body)
			}

			// Score: the heuristic, 2 for a customer with nothing linked;
			// linked to a fraud label, higher, with that reason first.
			if d := a.riskEvent(t, map[string]any{"type": "login", "customer_id": "c3", "device_id": "dev-3"}); d.Features.Counters == nil {
				t.Fatalf("%+v", d)
			}
			a.post("/api/v1/risk/labels", map[string]any{"customer_id": "c3", "label": "fraud"})
			r = a.do("POST", "/api/v1/risk/decisions", a.key, map[string]any{"type": "login", "customer_id": "c4", "device_id": "dev-3"})
			var sd struct {
				Score        float64 `json:"score"`
				ScoreReasons []struct {
					Rule string `json:"rule"`
				} `json:"score_reasons"`
			}
			if err := json.Unmarshal(r.body, &sd); err != nil || sd.Score != 17 || len(sd.ScoreReasons) == 0 || sd.ScoreReasons[0].Rule != "score:graph.linked_labelled_fraud" {
				t.Fatalf("score linked to fraud: %s", r.body)
			}
			r = a.do("POST", "/api/v1/risk/decisions", a.key, map[string]any{"type": "login", "customer_id": "c5"})
			if err := json.Unmarshal(r.body, &sd); err != nil || sd.Score != 2 {
				t.Fatalf("score alone: %s", r.body)
			}
			expectProblem(t, a.do("POST", "/api/v1/risk/models", a.key, nil), 409, "too_few_labels")
			if m := a.do("GET", "/api/v1/risk/models/current", a.key, nil).json(t); m["kind"] != "heuristic" || m["version"] != 0.0 {
				t.Fatalf("model: %v", m)
			}

			// Enough labels: fraudsters place big orders from one device,
			// good customers small ones from their own; a trained model
			// (version 1) then scores a big order from that device higher.
			for i := range 12 {
				a.riskEvent(t, map[string]any{"type": "order", "customer_id": fmt.Sprint("fz", i), "device_id": "dev-farm", "amount": "900.00", "currency": "EUR"})
				a.riskEvent(t, map[string]any{"type": "order", "customer_id": fmt.Sprint("ok", i), "device_id": fmt.Sprint("dev-ok", i), "amount": fmt.Sprint(10+i, ".00"), "currency": "EUR"})
				a.post("/api/v1/risk/labels", map[string]any{"customer_id": fmt.Sprint("fz", i), "label": "fraud"})
				a.post("/api/v1/risk/labels", map[string]any{"customer_id": fmt.Sprint("ok", i), "label": "legitimate"})
			}
			m := a.post("/api/v1/risk/models", nil)
			if m["version"] != 1.0 || m["kind"] != "logistic" || m["examples"].(float64) < 24 {
				t.Fatalf("trained: %v", m)
			}
			scoreOf := func(ev map[string]any) float64 {
				var sd struct{ Score float64 }
				b := a.do("POST", "/api/v1/risk/decisions", a.key, ev).body
				_ = json.Unmarshal(b, &sd)
				return sd.Score
			}
			hi := scoreOf(map[string]any{"type": "order", "customer_id": "new1", "device_id": "dev-farm", "amount": "800.00", "currency": "EUR"})
			lo := scoreOf(map[string]any{"type": "order", "customer_id": "new2", "device_id": "dev-new", "amount": "15.00", "currency": "EUR"})
			if hi < 80 || lo > 20 {
				t.Fatalf("trained model scores: farm %v, alone %v; model %v", hi, lo, m)
			}
		})
	}
}
