package realtime

import (
	"context"
)

// Contacts returns the users who share with user, in tenant, a private
// conversation or a group of at most Config.PresenceGroupLimit members
// (user excluded): those told of the user's presence. A larger group
// does not count: its members coming online would cost every other
// member a frame each (a million frames for 1,000 members connecting),
// the fan-out chat services stop pushing for large channels.
// CROSS JOIN fixes SQLite's join order (PostgreSQL plans it freely):
// with a plain JOIN, SQLite without statistics scanned every member of
// the tenant for the other side, one probe each, on every connect.
func (s *Service) Contacts(ctx context.Context, tenant, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT b.user_id FROM conversation_members a CROSS JOIN conversations c
		CROSS JOIN conversation_members b
		WHERE a.tenant_id = $1 AND a.user_id = $2 AND c.tenant_id = a.tenant_id AND c.id = a.conversation_id
		AND c.member_count <= $3 AND b.tenant_id = a.tenant_id AND b.conversation_id = a.conversation_id
		AND b.user_id <> $2`, tenant, user, s.cfg.PresenceGroupLimit)
	return collect(rows, err, "reading contacts", func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}
