package app_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// A percentage of a summed value with a fixed fee per event, through the
// real pipeline: payments sent to POST /api/v1/events under two subjects
// of one customer are metered, and the invoice of the period bills 1.5 %
// of their sum plus 0.30 for each of them. An event without a value (the
// amount missing or null) adds nothing to the SUM meter and is no payment:
// no fee is billed for it.
func TestFeePerEventBilledFromIngestedEvents(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			post := a.post
			post("/api/v1/meters", map[string]any{"slug": "payments", "eventType": "payment", "aggregation": "SUM", "valueProperty": "$.amount"})
			post("/api/v1/meters", map[string]any{"slug": "payment_events", "eventType": "payment", "aggregation": "COUNT"})
			plan := post("/api/v1/plans", map[string]any{"key": "payments", "name": "Payments"})
			pid := plan["id"].(string)
			v := post("/api/v1/plans/"+pid+"/versions", map[string]any{
				"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"charges": []any{map[string]any{"key": "payments", "kind": "usage", "meter": "payments",
					"price": map[string]any{"model": "percentage", "percentage": "1.5", "fixed_amount_per_event": "0.30"}}},
			})
			post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
			cus := post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR", "subjects": []string{"shop-eu", "shop-us"}})

			// A period that has ended: a month from 32 days ago.
			from := time.Now().UTC().Add(-32 * 24 * time.Hour).Truncate(time.Minute)
			to := from.AddDate(0, 1, 0)
			var evs []map[string]any
			for i, p := range []struct {
				subject string
				data    map[string]any
			}{
				{"shop-eu", map[string]any{"amount": "100.00"}},
				{"shop-eu", map[string]any{"amount": 20.5}},
				{"shop-eu", map[string]any{"amount": "5.00"}},
				{"shop-us", map[string]any{"amount": "74.50"}},
				{"shop-us", map[string]any{"amount": 0}}, // a value: a payment of 0
				{"shop-us", map[string]any{"amount": nil}},
				{"shop-us", map[string]any{"note": "no amount"}},
				{"shop-other", map[string]any{"amount": "1000.00"}}, // another customer's
			} {
				evs = append(evs, map[string]any{"specversion": "1.0", "id": fmt.Sprint("p-", i), "source": "test", "type": "payment",
					"subject": p.subject, "time": from.Add(time.Hour + time.Duration(i)*time.Minute).Format(time.RFC3339), "data": p.data})
			}
			b, _ := json.Marshal(evs)
			if r := a.do("POST", "/api/v1/events", a.key, json.RawMessage(b), "Content-Type", "application/cloudevents-batch+json"); r.status != 204 {
				t.Fatalf("ingest: %d %s", r.status, r.body)
			}
			// Every event is metered (the COUNT meter counts those without
			// an amount too) before the subscription's period is billed.
			waitFor(t, func() bool {
				return meterTotal(t, a, "payment_events", from, to).Equal(decimal.NewFromInt(int64(len(evs))))
			})

			src, tenant := a.MeteredUsage(), a.tenantOf(t, a.key)
			by, err := src.UsageBySubject(t.Context(), tenant, "payments", []string{"shop-eu", "shop-us"}, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if eu, us := by["shop-eu"], by["shop-us"]; eu.Quantity.String() != "125.5" || eu.Events != 3 || us.Quantity.String() != "74.5" || us.Events != 2 {
				t.Fatalf("usage by subject: %+v", by)
			}

			sub := post("/api/v1/subscriptions", map[string]any{"customer_id": cus["id"], "plan_id": pid, "start_at": from})
			var inv demoInvoice
			deadline := time.Now().Add(30 * time.Second) // the billing role runs every 10 s
			for {
				var page struct {
					Data []demoInvoice `json:"data"`
				}
				r := a.do("GET", fmt.Sprintf("/api/v1/invoices?subscription_id=%s", sub["id"]), a.key, nil)
				if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
					t.Fatalf("listing invoices: %d %s", r.status, r.body)
				}
				if len(page.Data) > 0 {
					r := a.do("GET", "/api/v1/invoices/"+page.Data[0].ID, a.key, nil)
					if err := json.Unmarshal(r.body, &inv); err != nil || r.status != 200 {
						t.Fatalf("reading invoice: %d %s", r.status, r.body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no invoice within 30 s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(inv.Lines) != 1 || inv.Lines[0].Kind != "usage" {
				t.Fatalf("invoice %s: want one usage line: %+v", inv.ID, inv.Lines)
			}
			// 1.5 % of 200.00 = 3.00, and 5 × 0.30 = 1.50.
			l := inv.Lines[0]
			if l.Quantity.String() != "200" || l.Usage.Events != 5 || l.Amount.String() != "4.5" {
				t.Fatalf("usage line bills %s in %d events for %s; want 200 in 5 events for 4.50: %+v", l.Quantity, l.Usage.Events, l.Amount, l)
			}
			if c := l.Usage.Components; len(c) != 2 || c[1].Kind != "event_fee" || c[1].Quantity.String() != "5" || c[1].Amount.String() != "1.5" {
				t.Fatalf("components: %+v", c)
			}
		})
	}
}
