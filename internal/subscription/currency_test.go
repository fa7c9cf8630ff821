package subscription_test

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// A customer's currency cannot change while it has a live subscription
// (billed in that currency); once the subscription has ended, it can.
// The catalog asks the subscription module, which owns the subscriptions.
func TestCurrencyLockedByLiveSubscriptions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Name: "API calls", Kind: catalog.FeatureMetered,
			MeterSlug: "api_calls", Limit: decp("1000")}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		b.publishPlan(t, "pro", proPlan())
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Acme", Currency: "EUR"}))
		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"}))
		usd := "USD"
		_, err := b.cat.UpdateCustomer(b.ctx, cus.ID, catalog.CustomerPatch{Currency: &usd})
		if e, ok := abacus.AsError(err); !ok || e.Code != "currency_locked" {
			t.Fatalf("changing the currency of a customer with a live subscription: %v, want currency_locked", err)
		}
		must(b.svc.Cancel(b.ctx, sub.ID, subscription.CancelInput{When: subscription.Now}))
		if c := must(b.cat.UpdateCustomer(b.ctx, cus.ID, catalog.CustomerPatch{Currency: &usd})); c.Currency != "USD" {
			t.Fatalf("currency after the subscription ended: %s", c.Currency)
		}
	})
}
