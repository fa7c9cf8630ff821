package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Usage sent through POST /api/v1/events shows up in a customer's
// entitlement (the real pipeline: ingest → JetStream → meter worker →
// rollups → usage query), and crossing 80% and 100% of the limit emits one
// domain event per threshold.
func TestEntitlementFollowsIngestedUsage(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			post := a.post
			post("/api/v1/meters", map[string]any{"slug": "calls", "eventType": "call", "aggregation": "SUM", "valueProperty": "$.n"})
			post("/api/v1/features", map[string]any{"key": "calls", "name": "Calls", "kind": "metered", "meter_slug": "calls", "limit": "100", "enforcement": "hard"})
			plan := post("/api/v1/plans", map[string]any{"key": "basic", "name": "Basic"})
			pid := plan["id"].(string)
			v := post("/api/v1/plans/"+pid+"/versions", map[string]any{
				"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"entitlements": []any{map[string]any{"feature": "calls"}},
				"charges":      []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "10.00"}}},
			})
			post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
			cus := post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR", "subjects": []string{"ada-app"}})
			cid := cus["id"].(string)
			post("/api/v1/subscriptions", map[string]any{"customer_id": cid, "plan_id": pid})

			sentAt := map[int]string{} // a retry re-sends the same event, time included
			send := func(from, n int) {
				var evs []map[string]any
				for i := from; i < from+n; i++ {
					if sentAt[i] == "" {
						sentAt[i] = time.Now().UTC().Format(time.RFC3339Nano)
					}
					evs = append(evs, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("e-%d", i), "source": "test",
						"type": "call", "subject": "ada-app", "time": sentAt[i], "data": map[string]any{"n": 10}})
				}
				b, _ := json.Marshal(evs)
				r := a.do("POST", "/api/v1/events", a.key, json.RawMessage(b), "Content-Type", "application/cloudevents-batch+json")
				if r.status != 204 {
					t.Fatalf("ingest: %d %s", r.status, r.body)
				}
			}
			entitlement := func() map[string]any {
				return a.do("GET", "/api/v1/customers/"+cid+"/entitlements/calls", a.key, nil).json(t)
			}
			waitUsed := func(want string) map[string]any {
				t.Helper()
				var e map[string]any
				waitFor(t, func() bool { e = entitlement(); return e["used"] == want })
				return e
			}
			e := waitUsed("0")
			if e["has_access"] != true || e["limit"] != "100" || e["remaining"] != "100" {
				t.Fatalf("fresh entitlement: %v", e)
			}
			send(0, 5) // 50
			waitUsed("50")
			send(5, 4) // 90: past 80%
			waitUsed("90")
			send(0, 5) // retries of the first batch: never counted twice
			send(9, 2) // 110: past 100%, hard limit
			e = waitUsed("110")
			if e["has_access"] != false || e["remaining"] != "0" {
				t.Fatalf("over a hard limit: %v", e)
			}
			waitFor(t, func() bool {
				var n int
				_ = a.DB.QueryRowContext(t.Context(), `SELECT count(*) FROM outbox_events WHERE type = 'entitlement.threshold_reached'`).Scan(&n)
				return n == 2
			})
			entitlement() // another check must not emit again
			var n int
			var payloads []string
			rows, err := a.DB.QueryContext(t.Context(), `SELECT payload FROM outbox_events WHERE type = 'entitlement.threshold_reached'`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var p string
				_ = rows.Scan(&p)
				payloads = append(payloads, p)
				n++
			}
			rows.Close()
			joined := strings.Join(payloads, " ")
			if n != 2 || !strings.Contains(joined, "80") || !strings.Contains(joined, "100") {
				t.Fatalf("threshold events: %d %s", n, joined)
			}
		})
	}
}

// A period boundary inside a minute gives that minute's usage to one of
// the two periods, not both (usage is kept per minute): what entitlements
// and invoices read for adjacent periods adds up to what was sent.
func TestAdjacentPeriodsCountABoundaryMinuteOnce(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			if r := a.do("POST", "/api/v1/meters", a.key, map[string]any{"slug": "calls", "eventType": "call", "aggregation": "SUM", "valueProperty": "$.n"}); r.status != 201 {
				t.Fatalf("creating the meter: %d %s", r.status, r.body)
			}
			t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
			var evs []map[string]any
			for i, ev := range []struct {
				at time.Duration
				n  int
			}{{-20 * time.Second, 8}, {10 * time.Second, 1}, {40 * time.Second, 2}, {70 * time.Second, 4}} {
				evs = append(evs, map[string]any{"specversion": "1.0", "id": fmt.Sprint("b-", i), "source": "test", "type": "call",
					"subject": "ada-app", "time": t0.Add(ev.at).UTC().Format(time.RFC3339Nano), "data": map[string]any{"n": ev.n}})
			}
			b, _ := json.Marshal(evs)
			if r := a.do("POST", "/api/v1/events", a.key, json.RawMessage(b), "Content-Type", "application/cloudevents-batch+json"); r.status != 204 {
				t.Fatalf("ingest: %d %s", r.status, r.body)
			}
			src, tenant := a.MeteredUsage(), a.tenantOf(t, a.key)
			ctx, subjects := t.Context(), []string{"ada-app"}
			waitFor(t, func() bool {
				v, err := src.Usage(ctx, tenant, "calls", subjects, t0.Add(-time.Hour), t0.Add(time.Hour))
				return err == nil && v.String() == "15"
			})
			boundary := t0.Add(30 * time.Second) // inside the minute of the events worth 1 and 2
			first, err := src.Usage(ctx, tenant, "calls", subjects, t0.Add(-time.Minute), boundary)
			if err != nil {
				t.Fatal(err)
			}
			second, err := src.Usage(ctx, tenant, "calls", subjects, boundary, t0.Add(2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if sum := first.Add(second); sum.String() != "15" {
				t.Fatalf("usage %s before the boundary and %s after it add up to %s; 15 was sent", first, second, sum)
			}
			bulk1, err := src.UsageBySubject(ctx, tenant, "calls", subjects, t0.Add(-time.Minute), boundary)
			if err != nil {
				t.Fatal(err)
			}
			bulk2, err := src.UsageBySubject(ctx, tenant, "calls", subjects, boundary, t0.Add(2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !bulk1["ada-app"].Quantity.Equal(first) || !bulk2["ada-app"].Quantity.Equal(second) {
				t.Fatalf("billing reads %v and %v where entitlements read %s and %s", bulk1, bulk2, first, second)
			}
			// The events behind them are split the same way: the one worth 8
			// before the boundary, the three of its minute and the next after.
			if bulk1["ada-app"].Events != 1 || bulk2["ada-app"].Events != 3 {
				t.Fatalf("billing reads %v and %v; want 1 event before the boundary and 3 after", bulk1, bulk2)
			}
			// A span inside one minute holds none of it: the minute counts
			// in the span where it ends.
			if v, err := src.Usage(ctx, tenant, "calls", subjects, t0.Add(5*time.Second), t0.Add(50*time.Second)); err != nil || !v.IsZero() {
				t.Fatalf("a span inside one minute: %s, %v; want 0", v, err)
			}
		})
	}
}
