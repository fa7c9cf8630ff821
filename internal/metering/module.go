package metering

import "github.com/abacusbilling/abacus"

// Module declares metering's boundary (see abacus.Module; checked by
// test/arch). Usage events, meters, rollups and queries (with
// internal/metering/usage).
var Module = abacus.Module{
	Name: "metering",
	Tables: []string{
		"meters", "metering_versions", "usage_events", "usage_event_ids", "usage_rollups",
		"usage_rollup_values", "metering_offsets", "usage_event_keys", "usage_event_blocks",
		"event_type_schemas", "metering_settings", "metering_rules_version",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "identity", "natsbus", "outbox",
	},
}
