package payments

import "github.com/abacusbilling/abacus"

// Module declares payments' boundary (see abacus.Module; checked by
// test/arch). The gateway seam and its adapters (stripe, manual, a fake),
// payment methods, collection, the payments ledger, gateway callbacks,
// disputes, balances and aging; dunning lives in payments/dunning (tables
// dunning_*, migrations 0550–0599).
var Module = abacus.Module{
	Name: "payments",
	Tables: []string{
		"payment_providers", "payment_customers", "payment_methods", "payments", "payment_disputes",
		"payment_gateway_events", "payment_parked_events",
		// payments/dunning
		"dunning_settings", "dunning_runs", "dunning_disputes", "dunning_events_seen",
	},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "document", "httpapi", "identity", "money", "natsbus", "outbox", "seal",
		// paytest, the test helper, builds invoices through subscriptions;
		// dunning moves subscriptions through past_due and suspended:
		"period", "pricing", "subscription",
	},
}
