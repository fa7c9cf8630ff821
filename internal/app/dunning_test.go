package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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
	"github.com/abacusbilling/abacus/internal/payments/paytest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// startAt boots the program on engine with a fake clock.
func startAt(t *testing.T, engine db.Engine, clock abacus.Clock) *testApp {
	return startAtWith(t, engine, clock, func(cfg *config.Config) { cfg.Outbox.PollInterval = 20 * time.Millisecond })
}

// startAtWith is startAt with the configuration changed by mod.
func startAtWith(t *testing.T, engine db.Engine, clock abacus.Clock, mod func(*config.Config)) *testApp {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	mod(&cfg)
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
// program on both engines, with a real decline: the customer's card is
// set up through a gateway callback and declines (the documented fake
// gateway, paytest.Fake); billing finalizes the invoice → the payments
// role charges it (attempt 1) and records the decline (payment.failed) →
// the dunning consumer starts a run and the subscription is past_due →
// the schedule runs on a fake clock, each retry charged through the
// payments core and declined → suspended, and the entitlement API answers
// payment_overdue → a payment is recorded through the API → restored: the
// entitlement answers access again, without a restart and well before any
// cache expires.
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
		pays, err := a.Payments()
		if err != nil {
			t.Fatal(err)
		}
		gw := paytest.NewFake()
		pays.RegisterGateway(payments.ProviderFake, gw.Factory())
		must(a.do("PUT", "/api/v1/payment-providers/fake", a.key, map[string]any{"secret_key": "sk_fake_12345678",
			"webhook_secret": "whsec_fake_12345678"}), 200)
		rate := billingSetUp(t, a)
		cusID := germanCustomer(t, a, "Globex GmbH", rate)
		tenant := a.tenantOf(t, a.key)
		// The customer's card, as the gateway's callback reports it set
		// up; it declines for lack of funds.
		if _, err := pays.HandleGatewayEvent(ctx, tenant, payments.ProviderFake, payments.GatewayEvent{ID: "evt_setup_1", Type: "setup_intent.succeeded",
			MethodSetup: &payments.MethodSetup{CustomerID: cusID, CustomerRef: "cus_fake_1", Reference: "pm_fake_1", Brand: "visa", Last4: "0341",
				ExpMonth: 12, ExpYear: now.Year() + 2}}); err != nil {
			t.Fatal(err)
		}
		gw.Decline("pm_fake_1", "insufficient_funds")
		plan := proPlan(a)
		sub := a.post("/api/v1/subscriptions", map[string]any{"customer_id": cusID, "plan_id": plan, "skip_trial": true})
		subID := sub["id"].(string)

		// Billing finalizes the invoice; the payments role charges it.
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
		attempts := func() []any {
			return must(a.do("GET", "/api/v1/payments?invoice_id="+invID, a.key, nil), 200)["data"].([]any)
		}
		waitFor(t, func() bool { // recorded pending before the gateway call, then its outcome
			ps := attempts()
			return len(ps) == 1 && ps[0].(map[string]any)["status"] != "pending"
		})
		if p := attempts()[0].(map[string]any); p["status"] != "failed" || p["decline_code"] != "insufficient_funds" ||
			p["decline_kind"] != "soft" || p["provider"] != "fake" || p["attempt"] != float64(1) {
			t.Fatalf("the first charge: %v", p)
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

		// The default schedule: retries on days 3, 5 and 7 (each declined
		// by the card), the final action after 3 days' grace (the run
		// started a second after now).
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
		if n, charges := len(attempts()), len(gw.Charges()); n != 4 || charges != 4 {
			t.Fatalf("after the schedule: %d attempts recorded, %d charges at the gateway; want 4 (max_attempts)", n, charges)
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

// billingSetUp gives the tenant billing settings (invoices due 14 days
// after finalization) and a 19 % VAT rate, whose id it returns.
func billingSetUp(t *testing.T, a *testApp) any {
	t.Helper()
	if r := a.do("PUT", "/api/v1/billing/settings", a.key, map[string]any{"invoice_prefix": "INV", "credit_note_prefix": "CN",
		"grace_seconds": 0, "due_days": 14, "payment_terms": "Payable within 14 days",
		"seller": map[string]any{"name": "Example SaaS GmbH", "address": []string{"Torstraße 1"}, "city": "Berlin", "postal_code": "10119",
			"country_code": "DE", "vat_id": "DE987654321", "endpoint_id": "DE987654321", "endpoint_scheme": "9930"},
		"payment_means": map[string]any{"code": "58", "iban": "DE89370400440532013000", "account_name": "Example SaaS GmbH"}}); r.status != 200 {
		t.Fatalf("billing settings: %d %s", r.status, r.body)
	}
	return a.post("/api/v1/tax-rates", map[string]any{"name": "VAT", "percentage": "19"})["id"]
}

// germanCustomer creates a customer taxed at rate and returns its id.
func germanCustomer(t *testing.T, a *testApp, name string, rate any) string {
	t.Helper()
	cus := a.post("/api/v1/customers", map[string]any{"name": name, "currency": "EUR", "email": "owner@" + strings.ToLower(strings.Fields(name)[0]) + ".example",
		"tax_id": "DE811907980", "address": map[string]any{"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}})
	id := cus["id"].(string)
	if r := a.do("PUT", "/api/v1/tax-assignments", a.key, map[string]any{"target_type": "customer", "target_id": id, "tax_rate_id": rate}); r.status != 200 {
		t.Fatalf("tax assignment: %d %s", r.status, r.body)
	}
	return id
}

// proPlan publishes plan pro (feature hd, 20 EUR a month in advance) and
// returns its id.
func proPlan(a *testApp) any {
	a.post("/api/v1/features", map[string]any{"key": "hd", "name": "HD", "kind": "boolean"})
	plan := a.post("/api/v1/plans", map[string]any{"key": "pro", "name": "Pro"})
	spec := catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly, Entitlements: []catalog.Grant{{Feature: "hd"}},
		Charges: []pricing.Charge{{Key: "base", Description: "Pro plan", Kind: pricing.ChargeFee,
			Fee: &pricing.Fee{Amount: decimal.RequireFromString("20"), Billed: pricing.InAdvance}}}}
	v := a.post("/api/v1/plans/"+plan["id"].(string)+"/versions", spec)
	a.post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", plan["id"], v["version"]), nil)
	return plan["id"]
}
