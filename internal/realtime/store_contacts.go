package realtime

import (
	"context"
)

// Contacts returns the users who share a conversation with user in
// tenant (user excluded): those allowed to see the user's presence.
// CROSS JOIN fixes SQLite's join order (PostgreSQL plans it freely):
// with a plain JOIN, SQLite without statistics scanned every member of
// the tenant for the other side, one probe each, on every connect.
func (s *Service) Contacts(ctx context.Context, tenant, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT b.user_id FROM conversation_members a CROSS JOIN conversation_members b
		WHERE a.tenant_id = $1 AND a.user_id = $2 AND b.tenant_id = a.tenant_id AND b.conversation_id = a.conversation_id
		AND b.user_id <> $2`, tenant, user)
	return collect(rows, err, "reading contacts", func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}
