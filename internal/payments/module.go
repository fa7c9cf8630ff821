package payments

import "github.com/abacusbilling/abacus"

// Module declares payments' boundary (see abacus.Module; checked by
// test/arch). Dunning lives in payments/dunning (tables dunning_*,
// migrations 0550–0599).
//
// This declaration holds only dunning's part until the payments core
// (gateway, ledger…) is merged beside it.
var Module = abacus.Module{
	Name: "payments",
	Tables: []string{
		"dunning_settings", "dunning_runs", "dunning_disputes", "dunning_events_seen",
	},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "httpapi", "natsbus", "outbox", "subscription",
	},
}
