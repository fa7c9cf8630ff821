package realtime

import "github.com/abacusbilling/abacus"

// Module declares realtime's boundary (see abacus.Module; checked by
// test/arch). The WebSocket gateway, conversations, members, messages and
// reactions, and the keys signing connection tokens.
var Module = abacus.Module{
	Name: "realtime",
	Tables: []string{
		"realtime_keys", "conversations", "conversation_members", "conversation_messages", "message_reactions",
		"realtime_offline_pending", "realtime_blocks", "realtime_reports", "realtime_public_keys",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "outbox",
	},
}
