package catalog

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// Examples are the values the API reference shows for the catalog's
// request and response bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	published := at.Add(10 * time.Minute)
	limit := decimal.RequireFromString("1000000")
	address := Address{Line1: "Friedrichstraße 68", City: "Berlin", PostalCode: "10117", Country: "DE"}
	name, email := "Acme GmbH", "billing@acme.example"
	subjects := []string{"acme-prod", "acme-staging"}
	spec := ExampleVersionSpec()
	return []any{
		CustomerInput{ExternalID: "crm-4711", Name: name, Email: email, Currency: "EUR", Address: address,
			TaxID: "DE123456789", Timezone: "Europe/Berlin", Metadata: map[string]string{"account_manager": "jane"}, Subjects: subjects},
		CustomerPatch{Email: &email, Subjects: &subjects},
		Customer{ID: "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", ExternalID: "crm-4711", Name: name, Email: email, Currency: "EUR",
			Address: address, TaxID: "DE123456789", TaxStatus: TaxStandard, Timezone: "Europe/Berlin",
			Metadata: map[string]string{"account_manager": "jane"}, Subjects: subjects, CreatedAt: at, UpdatedAt: at},
		FeatureInput{Key: "api_calls", Name: "API calls", Kind: FeatureMetered, MeterSlug: "api_calls", Limit: &limit, Enforcement: Hard},
		FeaturePatch{Name: &[]string{"API requests"}[0], Limit: &limit},
		Feature{ID: "fea_01jbx7m0d4f6h8j0k2m4n6p8qr", Key: "api_calls", Name: "API calls", Kind: FeatureMetered, MeterSlug: "api_calls",
			Limit: &limit, Enforcement: Hard, CreatedAt: at, UpdatedAt: at},
		PlanInput{Key: "pro", Name: "Pro", Description: "For growing teams: 1M API calls a month included"},
		Plan{ID: "plan_01jbx7n3s5v7x9z1b3d5f7h9jk", Key: "pro", Name: "Pro", Description: "For growing teams: 1M API calls a month included",
			CreatedAt: at, UpdatedAt: at},
		spec,
		examplePreviewInput(),
		examplePreview(),
		Version{ID: "pver_01jbx7p6w8y0a2c4e6g8j0l2np", PlanID: "plan_01jbx7n3s5v7x9z1b3d5f7h9jk", Version: 1, Status: Published,
			VersionSpec: spec, PublishedAt: &published, CreatedAt: at, UpdatedAt: published},
	}
}

// ExampleVersionSpec is the plan version the API reference shows: a
// monthly fee and graduated API calls, with a metered entitlement.
func ExampleVersionSpec() VersionSpec {
	d := decimal.RequireFromString
	upTo := d("1000000")
	return VersionSpec{Currency: "EUR", Rounding: money.RoundHalfUp, BillingInterval: period.Monthly, Anchor: AnchorStart, TrialDays: 14,
		Entitlements: []Grant{{Feature: "api_calls", Limit: &upTo}, {Feature: "sso", Value: json.RawMessage(`true`)}},
		Charges: []pricing.Charge{
			{Key: "base", Description: "Pro plan", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("49.00"), Billed: pricing.InAdvance}},
			{Key: "api_calls", Description: "API calls", Kind: pricing.ChargeUsage, Meter: "api_calls", Price: &pricing.Price{
				Model: pricing.Graduated, Tiers: []pricing.Tier{{UpTo: &upTo, UnitAmount: d("0")}, {UnitAmount: d("0.00002")}}}},
		},
	}
}

// examplePreviewInput asks what 12,345 API calls cost on a graduated price
// whose first 10,000 calls cost 0.002 and the rest 0.001.
func examplePreviewInput() PricePreviewInput {
	upTo := decimal.RequireFromString("10000")
	return PricePreviewInput{Currency: "EUR", Quantity: decimal.RequireFromString("12345"), Price: pricing.Price{
		Model: pricing.Graduated, Tiers: []pricing.Tier{
			{UpTo: &upTo, UnitAmount: decimal.RequireFromString("0.002")},
			{UnitAmount: decimal.RequireFromString("0.001")},
		}}}
}

// examplePreview is the answer to examplePreviewInput, computed by the engine.
func examplePreview() PricePreview {
	p, err := PreviewPrice(examplePreviewInput())
	if err != nil {
		panic(err)
	}
	return p
}
