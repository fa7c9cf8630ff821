package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// startAt boots the program on engine with a fake clock.
func startAt(t *testing.T, engine db.Engine, clock abacus.Clock) *testApp {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	if engine == db.Postgres {
		cfg.Database.URL = dbtest.NewSchema(t)
	}
	a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler), Clock: clock})
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return &testApp{App: a, t: t, base: "http://" + a.Addr(), key: a.BootstrapKey}
}

// The done-when flow of issue 15 on the access side, through the whole
// program on both engines: an invoice's payment fails (payment.failed, as
// the payments core records it) → the dunning consumer starts a run and
// the subscription is past_due → the schedule runs on a fake clock →
// suspended, and the entitlement API answers payment_overdue → a payment
// is recorded through the API → restored: the entitlement answers access
// again, without a restart and well before any cache expires.
func TestFailedPaymentDunningSuspendsAndPaymentRestores(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		now := time.Now().UTC().Truncate(time.Second)
		clock := abacus.NewFakeClock(now)
		a := startAt(t, d.Engine(), clock)
		ctx := context.Background()
		must := func(r response, status int) map[string]any {
			t.Helper()
			if r.status != status {
				t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
			}
			if len(r.body) == 0 {
				return nil
			}
			return r.json(t)
		}
		must(a.do("PUT", "/api/v1/billing/settings", a.key, map[string]any{"invoice_prefix": "INV", "credit_note_prefix": "CN",
			"grace_seconds": 0, "due_days": 14, "payment_terms": "Payable within 14 days",
			"seller": map[string]any{"name": "Example SaaS GmbH", "address": []string{"Torstraße 1"}, "city": "Berlin", "postal_code": "10119",
				"country_code": "DE", "vat_id": "DE987654321", "endpoint_id": "DE987654321", "endpoint_scheme": "9930"},
			"payment_means": map[string]any{"code": "58", "iban": "DE89370400440532013000", "account_name": "Example SaaS GmbH"}}), 200)
		rate := a.post("/api/v1/tax-rates", map[string]any{"name": "VAT", "percentage": "19"})
		cus := a.post("/api/v1/customers", map[string]any{"name": "Globex GmbH", "currency": "EUR", "email": "owner@globex.example",
			"tax_id": "DE811907980", "address": map[string]any{"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}})
		cusID := cus["id"].(string)
		must(a.do("PUT", "/api/v1/tax-assignments", a.key, map[string]any{"target_type": "customer", "target_id": cusID, "tax_rate_id": rate["id"]}), 200)
		a.post("/api/v1/features", map[string]any{"key": "hd", "name": "HD", "kind": "boolean"})
		plan := a.post("/api/v1/plans", map[string]any{"key": "pro", "name": "Pro"})
		spec := catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly, Entitlements: []catalog.Grant{{Feature: "hd"}},
			Charges: []pricing.Charge{{Key: "base", Description: "Pro plan", Kind: pricing.ChargeFee,
				Fee: &pricing.Fee{Amount: decimal.RequireFromString("20"), Billed: pricing.InAdvance}}}}
		v := a.post("/api/v1/plans/"+plan["id"].(string)+"/versions", spec)
		a.post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", plan["id"], v["version"]), nil)
		sub := a.post("/api/v1/subscriptions", map[string]any{"customer_id": cusID, "plan_id": plan["id"], "skip_trial": true})
		subID := sub["id"].(string)

		clock.Advance(time.Second)
		if _, err := a.Billing().RunOnce(ctx, clock.Now()); err != nil {
			t.Fatal(err)
		}
		var inv map[string]any
		for _, x := range must(a.do("GET", "/api/v1/invoices?customer_id="+cusID, a.key, nil), 200)["data"].([]any) {
			if x := x.(map[string]any); x["status"] == "open" {
				inv = x
			}
		}
		if inv == nil {
			t.Fatal("no open invoice after the billing run")
		}
		invID := inv["id"].(string)

		// The first charge fails (a soft decline), as the payments core
		// records it.
		var tenant string
		if err := a.DB.QueryRowContext(ctx, `SELECT tenant_id FROM customers WHERE id = $1`, cusID).Scan(&tenant); err != nil {
			t.Fatal(err)
		}
		if err := a.DB.InTx(ctx, func(tx *db.Tx) error {
			_, err := payments.PaymentFailed.Record(ctx, tx, tenant, "pay_test", clock.Now(), payments.PaymentEvent{
				PaymentID: "pay_test", InvoiceID: invID, CustomerID: cusID, Provider: "fake", Status: payments.StatusFailed,
				Amount: decimal.RequireFromString("23.80"), AmountRefunded: decimal.Zero, Currency: "EUR", Attempt: 1,
				DeclineCode: "insufficient_funds", DeclineKind: payments.DeclineSoft, InvoiceAmountDue: decimal.RequireFromString("23.80"),
				InvoiceStatus: "open"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		status := func() string {
			return must(a.do("GET", "/api/v1/subscriptions/"+subID, a.key, nil), 200)["status"].(string)
		}
		waitFor(t, func() bool { return status() == "past_due" })
		access := func() (bool, any) {
			e := must(a.do("GET", "/api/v1/customers/"+cusID+"/entitlements/hd", a.key, nil), 200)
			return e["has_access"] == true, e["reason"]
		}
		if ok, _ := access(); !ok {
			t.Fatal("past_due lost its access")
		}

		// The default schedule: retries on days 3, 5 and 7 (no gateway is
		// configured, so each fails), the final action after 3 days' grace (the
		// run started a second after now).
		for _, d := range []int{2, 3, 4, 5, 6, 7, 11} {
			clock.Set(now.Add(time.Duration(d) * 24 * time.Hour))
			if _, err := a.Dunning().Pass(ctx, clock.Now()); err != nil {
				t.Fatal(err)
			}
			if d < 11 && status() != "past_due" {
				t.Fatalf("day %d: %s", d, status())
			}
		}
		if s := status(); s != "suspended" {
			t.Fatalf("after the schedule: %s", s)
		}
		if ok, reason := access(); ok || reason != "payment_overdue" {
			t.Fatalf("suspended: has_access %v reason %v", ok, reason)
		}

		paid := time.Now()
		must(a.do("POST", "/api/v1/payments", a.key, map[string]any{"invoice_id": invID, "amount": inv["amount_due"],
			"reference": "bank-1"}), 201)
		waitFor(t, func() bool { ok, _ := access(); return ok })
		t.Logf("%s: payment recorded → entitlement has_access true after %v (outbox poll 20 ms)", d.Engine(), time.Since(paid))
		if s := status(); s != "active" {
			t.Errorf("paid: %s", s)
		}
	})
}
