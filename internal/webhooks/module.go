package webhooks

import "github.com/abacusbilling/abacus"

// Module declares webhooks' boundary (see abacus.Module; checked by test/arch).
// Outbound webhooks to the Standard Webhooks spec, fed by domain events.
var Module = abacus.Module{
	Name: "webhooks",
	Tables: []string{
		"webhook_endpoints", "webhook_events", "webhook_messages", "webhook_attempts",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "natsbus", "outbox",
	},
}
