package notifications

import "github.com/abacusbilling/abacus"

// Module declares notifications' boundary (see abacus.Module; checked by
// test/arch). Templates, triggers, the sending queue with per-channel
// delivery state, e-mail, suppressions and invoice delivery preferences.
// It must not use identity or enduser: both send their mails through it.
var Module = abacus.Module{
	Name: "notifications",
	Tables: []string{
		"notifications", "notification_attachments", "notification_deliveries", "notification_templates",
		"notification_template_versions", "notification_triggers", "notification_events_seen",
		"notification_suppressions", "notification_settings", "notification_customer_delivery",
		// inapp, push and prefs (migration 0630)
		"notification_inbox", "notification_push_keys", "notification_push_subscriptions",
		"notification_preferences", "notification_quiet_hours", "notification_digest_items",
		// document delivery history (issue 22, migration 0903)
		"notification_delivery_history",
	},
	Uses: []string{
		"abacus", "blob", "db", "httpapi", "natsbus", "outbox",
	},
}
