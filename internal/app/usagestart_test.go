package app_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Usage belongs to a subscription from its start instant, not from the
// start of the minute it falls in (usage is rolled up per minute): an
// event ten seconds before the start is neither counted in the
// entitlement's used nor billed; one ten seconds after is both.
func TestUsageCountsFromTheStartInstant(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			post := a.post
			post("/api/v1/meters", map[string]any{"slug": "calls", "eventType": "call", "aggregation": "SUM", "valueProperty": "$.n"})
			post("/api/v1/features", map[string]any{"key": "calls", "name": "Calls", "kind": "metered", "meter_slug": "calls", "limit": "100"})
			plan := post("/api/v1/plans", map[string]any{"key": "calls", "name": "Calls"})
			pid := plan["id"].(string)
			v := post("/api/v1/plans/"+pid+"/versions", map[string]any{
				"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"entitlements": []any{map[string]any{"feature": "calls"}},
				"charges": []any{map[string]any{"key": "calls", "kind": "usage", "meter": "calls",
					"price": map[string]any{"model": "per_unit", "unit_amount": "1.00"}}},
			})
			post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
			cus := post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR", "subjects": []string{"ada-app"}})
			cid := cus["id"].(string)

			// Half a minute into a minute an hour ago, so both events fall
			// in the minute the subscription starts in.
			startAt := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
			var evs []map[string]any
			for i, e := range []struct {
				at time.Time
				n  int
			}{{startAt.Add(-10 * time.Second), 7}, {startAt.Add(10 * time.Second), 5}} {
				evs = append(evs, map[string]any{"specversion": "1.0", "id": fmt.Sprint("c-", i), "source": "test", "type": "call",
					"subject": "ada-app", "time": e.at.Format(time.RFC3339Nano), "data": map[string]any{"n": e.n}})
			}
			b, _ := json.Marshal(evs)
			if r := a.do("POST", "/api/v1/events", a.key, json.RawMessage(b), "Content-Type", "application/cloudevents-batch+json"); r.status != 204 {
				t.Fatalf("ingest: %d %s", r.status, r.body)
			}
			waitFor(t, func() bool {
				return meterTotal(t, a, "calls", startAt.Add(-time.Minute), startAt.Add(time.Minute)).Equal(decimal.NewFromInt(12))
			})
			sub := post("/api/v1/subscriptions", map[string]any{"customer_id": cid, "plan_id": pid, "start_at": startAt, "skip_trial": true})

			var used any
			waitFor(t, func() bool {
				used = a.do("GET", "/api/v1/customers/"+cid+"/entitlements/calls", a.key, nil).json(t)["used"]
				return used != nil && used != "0"
			})
			if used != "5" {
				t.Errorf("entitlement used %v, want 5 (the event after the start only)", used)
			}

			a.post("/api/v1/subscriptions/"+sub["id"].(string)+"/cancel", map[string]any{"when": "now"})
			inv := waitForInvoices(t, a, sub["id"].(string), 1)[0]
			billed := decimal.Zero
			for _, l := range inv.Lines {
				if l.Kind == "usage" {
					billed = billed.Add(l.Quantity)
				}
			}
			if !billed.Equal(decimal.NewFromInt(5)) {
				t.Errorf("invoice %s bills %s calls, want 5 (the event after the start only): %+v", inv.ID, billed, inv.Lines)
			}
		})
	}
}
