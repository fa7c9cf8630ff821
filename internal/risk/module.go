package risk

import "github.com/abacusbilling/abacus"

// Module declares risk's boundary (see abacus.Module; checked by test/arch).
// Risk events, JsonLogic rules, velocity counters and decisions (0800–0849);
// the link graph, lists, labels, review cases and the score live beside
// them (0850–0899).
var Module = abacus.Module{
	Name: "risk",
	Tables: []string{
		"risk_events", "risk_decisions", "risk_rules", "risk_counters", "risk_settings", "risk_event_schemas", "risk_rule_sets",
		"risk_journal", "risk_labels", "risk_lists", "risk_list_entries", "risk_cases", "risk_case_comments", "risk_models", "risk_usage_alerts",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "money", "natsbus", "outbox",
	},
}
