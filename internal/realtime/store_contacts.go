package realtime

import (
	"context"
)

// Contacts returns the users who share a conversation with user in
// tenant (user excluded): those allowed to see the user's presence.
func (s *Service) Contacts(ctx context.Context, tenant, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT b.user_id FROM conversation_members a
		JOIN conversation_members b ON b.tenant_id = a.tenant_id AND b.conversation_id = a.conversation_id
		WHERE a.tenant_id = $1 AND a.user_id = $2 AND b.user_id <> $2`, tenant, user)
	return collect(rows, err, "reading contacts", func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}
