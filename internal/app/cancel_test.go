package app_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Canceling now ends the subscription at once, and the billing role as
// `abacus serve` runs it issues the final invoice, crediting the unused
// in-advance fee, within one billing round: the cycle does not wait for
// the period end it was scheduled for before the cancellation.
func TestCancelNowIssuesTheFinalInvoice(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			plan := a.post("/api/v1/plans", map[string]any{"key": "seat", "name": "Seat"})
			pid := plan["id"].(string)
			v := a.post("/api/v1/plans/"+pid+"/versions", map[string]any{
				"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"charges": []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "30.00"}}},
			})
			a.post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
			cus := a.post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR"})
			startAt := time.Now().UTC().Add(-10 * 24 * time.Hour)
			sub := a.post("/api/v1/subscriptions", map[string]any{"customer_id": cus["id"], "plan_id": pid, "start_at": startAt, "skip_trial": true})
			subID := sub["id"].(string)
			waitForInvoices(t, a, subID, 1) // the period's fee, billed in advance
			a.post("/api/v1/subscriptions/"+subID+"/cancel", map[string]any{"when": "now"})
			final := waitForInvoices(t, a, subID, 2)[1] // oldest first
			credit := false
			for _, l := range final.Lines {
				credit = credit || l.Amount.IsNegative()
			}
			if !credit {
				t.Fatalf("final invoice %s credits nothing: %+v", final.ID, final.Lines)
			}
		})
	}
}

// waitForInvoices waits up to two billing rounds (the role runs every
// 10 s) for subscription sub to have n invoices and returns them with
// their lines, oldest first.
func waitForInvoices(t *testing.T, a *testApp, sub string, n int) []demoInvoice {
	t.Helper()
	deadline := time.Now().Add(25 * time.Second)
	for {
		var page struct {
			Data []demoInvoice `json:"data"`
		}
		r := a.do("GET", "/api/v1/invoices?subscription_id="+sub, a.key, nil)
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
			t.Fatalf("listing invoices: %d %s", r.status, r.body)
		}
		if len(page.Data) >= n {
			for i, inv := range page.Data {
				r := a.do("GET", "/api/v1/invoices/"+inv.ID, a.key, nil)
				if err := json.Unmarshal(r.body, &page.Data[i]); err != nil || r.status != 200 {
					t.Fatalf("reading invoice: %d %s", r.status, r.body)
				}
			}
			return page.Data
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d invoices of %s within 25 s, want %d", len(page.Data), sub, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
