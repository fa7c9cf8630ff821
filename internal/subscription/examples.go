package subscription

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/period"
)

// Examples are the values the API reference shows for the subscription
// and entitlement request and response bodies (httpapi.Server.Example).
func Examples() []any {
	start := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	trialEnd := start.AddDate(0, 0, 14)
	periodEnd := trialEnd.AddDate(0, 1, 0)
	seats := decimal.RequireFromString("5")
	used, limit, left := decimal.RequireFromString("812345"), decimal.RequireFromString("1000000"), decimal.RequireFromString("187655")
	sub := Subscription{ID: "sub_01jbx7r9a1c3e5g7j9l1n3q5st", CustomerID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab",
		PlanID: "plan_01jbx7n3s5v7x9z1b3d5f7h9jk", VersionID: "pver_01jbx7p6w8y0a2c4e6g8j0l2np", Status: Trialing, Quantity: seats,
		Overrides: []Override{}, Timezone: "Europe/Berlin", BillingInterval: period.Monthly, BillingAnchor: trialEnd,
		StartedAt: start, TrialEnd: &trialEnd, CurrentPeriod: &period.Period{Start: start, End: trialEnd}, CreatedAt: start, UpdatedAt: start}
	return []any{
		CreateInput{CustomerID: "crm-4711", PlanID: "pro", Quantity: &seats},
		sub,
		ChangePlanInput{PlanID: "enterprise", When: PeriodEnd},
		CancelInput{When: PeriodEnd},
		struct {
			Quantity decimal.Decimal `json:"quantity"`
		}{Quantity: decimal.RequireFromString("8")},
		Change{ID: "sch_01jbx7t2c4e6g8j0l2n4q6s8uv", Type: "trial_started", FromStatus: "", ToStatus: Trialing, EffectiveAt: start,
			Data: json.RawMessage(`{"trial_end":"2026-11-16T09:30:00Z"}`), CreatedAt: start},
		Phase{ID: "sph_01jbx7v5e7g9j1l3n5q7s9uwxy", VersionID: sub.VersionID, Quantity: seats, Overrides: []Override{}, Start: start},
		Entitlement{Feature: "api_calls", Kind: catalog.FeatureMetered, HasAccess: true, Limit: &limit, Used: &used, Remaining: &left,
			Enforcement: catalog.Hard, SubscriptionID: sub.ID, PeriodStart: &trialEnd, PeriodEnd: &periodEnd},
	}
}
