package subscription

import "github.com/abacusbilling/abacus"

// Module declares subscription's boundary (see abacus.Module; checked by
// test/arch). Subscriptions, phases, prorations, history and entitlement
// thresholds. Its tables were created by the catalog migration (0300);
// subscription owns them, and its new migrations take 0350–0399.
var Module = abacus.Module{
	Name: "subscription",
	Tables: []string{
		"subscriptions", "subscription_phases", "subscription_changes", "subscription_prorations",
		"entitlement_thresholds",
	},
	Uses: []string{
		"abacus", "catalog", "db", "httpapi", "outbox", "period", "pricing",
	},
}
