package analytics

import "github.com/abacusbilling/abacus"

// Module declares analytics' boundary (see abacus.Module; checked by
// test/arch). The journal of consumed domain events and the figures folded
// from it (migrations 1000–1049). Other modules are read through their
// events and Go APIs: subscription and billing events, catalog's plan
// versions (for MRR), payments' balances and aging, metering's usage,
// subscriptions' entitlements; devices through a port the app wires.
var Module = abacus.Module{
	Name: "analytics",
	Tables: []string{
		"analytics_events", "analytics_subscriptions", "analytics_customers", "analytics_customer_days",
		"analytics_daily", "analytics_documents", "analytics_fx_rates", "analytics_lock", "analytics_redemptions", "analytics_running",
	},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "httpapi", "metering", "money", "natsbus", "outbox", "payments", "period", "pricing",
		"subscription",
	},
}
