package identity

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// lockBootstrap serialises Bootstrap across processes sharing a database.
// On PostgreSQL it takes a transaction-scoped advisory lock keyed by the
// schema, so a second node waits and then counts the first node's tenant
// (read committed: its next statement sees what committed meanwhile). On
// SQLite one process owns the file (the data-dir lock) and its single
// writer connection already runs one transaction at a time.
func lockBootstrap(ctx context.Context, tx *db.Tx) error {
	if tx.Engine() != db.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':bootstrap', 0))`); err != nil {
		return fmt.Errorf("taking the bootstrap lock: %w", err)
	}
	return nil
}
