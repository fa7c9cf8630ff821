package payments

import "github.com/abacusbilling/abacus"

// Module declares payments' boundary (see abacus.Module; checked by
// test/arch). The gateway seam and its adapters (stripe, manual, a fake),
// payment methods, collection, the payments ledger, gateway callbacks,
// disputes, balances and aging; dunning lives in payments/dunning.
var Module = abacus.Module{
	Name: "payments",
	Tables: []string{
		"payment_providers", "payment_customers", "payment_methods", "payments", "payment_disputes",
		"payment_gateway_events", "payment_parked_events",
	},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "document", "httpapi", "identity", "money", "natsbus", "outbox", "seal",
		// paytest, the test helper, builds invoices through subscriptions:
		"period", "pricing", "subscription",
	},
}
