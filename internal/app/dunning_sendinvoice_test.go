package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Dunning of send_invoice invoices through the whole program on both
// engines, on a fake clock: customers who pay by the hosted page get their
// invoices finalized by billing → the dunning consumer schedules a run per
// invoice for its due date → the day it is due, a pass makes the
// subscription past_due (dunning.started with the pay link, which opens
// the hosted page); reminders follow on days 3, 5 and 7 after it, the
// final action after 3 more days' grace → suspended, and the entitlement
// API answers payment_overdue → a payment is recorded → access is back.
//
// It is also the measurement of "restoring access after a payment is
// visible to entitlement checks within 1 s": with
// ABACUS_ACCESS_RESTORE_SAMPLES=n it pays n suspended customers one by one
// with the default outbox poll interval and logs the median and the worst
// time from the payment's 201 to has_access true (not asserted).
func TestSendInvoiceDunningOverHTTP(t *testing.T) {
	t.Parallel()
	samples, _ := strconv.Atoi(os.Getenv("ABACUS_ACCESS_RESTORE_SAMPLES"))
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		now := time.Now().UTC().Truncate(time.Second)
		clock := abacus.NewFakeClock(now)
		a := startAtWith(t, d.Engine(), clock, func(cfg *config.Config) {
			if samples == 0 {
				cfg.Outbox.PollInterval = 20 * time.Millisecond
			}
		})
		ctx := context.Background()
		rate := billingSetUp(t, a)
		plan := proPlan(a)
		n := max(samples, 1)
		var customers []string
		for i := range n {
			cus := germanCustomer(t, a, fmt.Sprintf("Initech %d GmbH", i), rate)
			if r := a.do("PUT", "/api/v1/customers/"+cus+"/billing", a.key, map[string]any{"collection_method": "send_invoice"}); r.status != 200 {
				t.Fatalf("collection method: %d %s", r.status, r.body)
			}
			a.post("/api/v1/subscriptions", map[string]any{"customer_id": cus, "plan_id": plan, "skip_trial": true})
			customers = append(customers, cus)
		}
		clock.Advance(time.Second)
		if _, err := a.Billing().RunOnce(ctx, clock.Now()); err != nil {
			t.Fatal(err)
		}
		runs := func(status string) []map[string]any {
			var out []map[string]any
			for cursor := ""; ; {
				page := a.do("GET", "/api/v1/dunning/runs?limit=100&status="+status+"&cursor="+cursor, a.key, nil).json(t)
				for _, r := range page["data"].([]any) {
					out = append(out, r.(map[string]any))
				}
				if cursor, _ = page["next_cursor"].(string); cursor == "" {
					return out
				}
			}
		}
		waitFor(t, func() bool { return len(runs("scheduled")) == n })
		first := runs("scheduled")[0]
		if first["collection_method"] != "send_invoice" || first["next_step"] != "overdue" {
			t.Fatalf("a scheduled run: %v", first)
		}
		due, err := time.Parse(time.RFC3339Nano, first["next_at"].(string))
		if err != nil || !due.After(now.Add(13*24*time.Hour)) {
			t.Fatalf("the run is due %v (%v); the invoice is due 14 days after %v", first["next_at"], err, now)
		}
		entitled := func(cus string) (bool, any) {
			e := a.do("GET", "/api/v1/customers/"+cus+"/entitlements/hd", a.key, nil).json(t)
			return e["has_access"] == true, e["reason"]
		}
		subStatus := func(cus string) string {
			return a.do("GET", "/api/v1/subscriptions?customer_id="+cus, a.key, nil).json(t)["data"].([]any)[0].(map[string]any)["status"].(string)
		}
		pass := func(at time.Time) {
			t.Helper()
			clock.Set(at)
			if _, err := a.Dunning().Pass(ctx, at); err != nil {
				t.Fatal(err)
			}
		}

		pass(due.Add(-time.Hour))
		if s := subStatus(customers[0]); s != "active" {
			t.Fatalf("before the due date: %s", s)
		}
		pass(due)
		if s := subStatus(customers[0]); s != "past_due" {
			t.Fatalf("overdue: %s", s)
		}
		link := startedLink(t, a, first["invoice_id"].(string))
		if res, err := http.Get(link); err != nil || res.StatusCode != 200 {
			t.Fatalf("the pay link %s: %v %v", link, res, err)
		}
		for _, d := range []int{3, 5, 7, 10} {
			pass(due.Add(time.Duration(d) * 24 * time.Hour))
		}
		if s := subStatus(customers[0]); s != "suspended" {
			t.Fatalf("after the schedule: %s", s)
		}
		if ok, reason := entitled(customers[0]); ok || reason != "payment_overdue" {
			t.Fatalf("suspended: has_access %v reason %v", ok, reason)
		}
		if got := dunningEvents(t, a, first["invoice_id"].(string)); fmt.Sprint(got) !=
			"[dunning.started dunning.reminder dunning.reminder dunning.reminder dunning.exhausted]" {
			t.Errorf("dunning events: %v", got)
		}

		var lat []time.Duration
		for i, cus := range customers {
			inv := a.do("GET", "/api/v1/invoices?status=open&customer_id="+cus, a.key, nil).json(t)["data"].([]any)[0].(map[string]any)
			paid := time.Now()
			if r := a.do("POST", "/api/v1/payments", a.key, map[string]any{"invoice_id": inv["id"], "amount": inv["amount_due"],
				"reference": fmt.Sprintf("bank-%d", i)}); r.status != 201 {
				t.Fatalf("payment: %d %s", r.status, r.body)
			}
			waitFor(t, func() bool { ok, _ := entitled(cus); return ok })
			lat = append(lat, time.Since(paid))
		}
		if s := subStatus(customers[0]); s != "active" {
			t.Errorf("paid: %s", s)
		}
		slices.Sort(lat)
		t.Logf("%s: payment recorded → has_access true: median %v, worst %v over %d payments", d.Engine(), lat[len(lat)/2], lat[len(lat)-1], len(lat))
	})
}

// startedLink is the pay link dunning.started carries for invoice.
func startedLink(t *testing.T, a *testApp, invoice string) string {
	t.Helper()
	var payload string
	if err := a.DB.QueryRowContext(context.Background(), `SELECT payload FROM outbox_events WHERE type = 'dunning.started' AND payload LIKE $1`,
		"%"+invoice+"%").Scan(&payload); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(payload, `"link":"`)
	if i < 0 || !strings.Contains(payload, `"collection_method":"send_invoice"`) {
		t.Fatalf("dunning.started without a link: %s", payload)
	}
	link, _, _ := strings.Cut(payload[i+len(`"link":"`):], `"`)
	return link
}

// dunningEvents are the types of the dunning events of invoice, in order.
func dunningEvents(t *testing.T, a *testApp, invoice string) []string {
	t.Helper()
	rows, err := a.DB.QueryContext(context.Background(), `SELECT type FROM outbox_events WHERE type LIKE 'dunning.%' AND payload LIKE $1 ORDER BY id`,
		"%"+invoice+"%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}
