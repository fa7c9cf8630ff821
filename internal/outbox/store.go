package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// publishExclusively publishes one batch while no other relay does.
func (r *Relay) publishExclusively(ctx context.Context) (published int, err error) {
	if r.db.Engine() != db.Postgres {
		// SQLite is one process with one writer: read and publish outside
		// a transaction so other writers are not held up, then mark.
		return r.publishBatch(ctx, r.db, nil)
	}
	// Several nodes may run the relay: the one holding the advisory lock
	// publishes, so events keep their order per aggregate.
	err = r.db.InTx(ctx, func(tx *db.Tx) error {
		var got bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema() || ':outbox', 0))`).Scan(&got); err != nil {
			return fmt.Errorf("taking relay lock: %w", err)
		}
		if !got {
			return nil
		}
		published, err = r.publishBatch(ctx, tx, tx)
		return err
	})
	return published, err
}

func pending(ctx context.Context, q db.Querier, limit int) ([]Event, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, tenant_id, aggregate_type, aggregate_id, type, version, payload, created_at
		FROM outbox_events WHERE published_at IS NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var payload string
		var at db.Time
		if err := rows.Scan(&e.ID, &e.TenantID, &e.AggregateType, &e.AggregateID, &e.Type, &e.Version, &payload, &at); err != nil {
			return nil, fmt.Errorf("reading outbox: %w", err)
		}
		e.Payload, e.CreatedAt = []byte(payload), at.Time
		out = append(out, e)
	}
	return out, rows.Err()
}

func markPublished(ctx context.Context, tx *db.Tx, ids []string) error {
	now := db.TimeOf(time.Now())
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox_events SET published_at = $1 WHERE id = $2`, now, id); err != nil {
			return fmt.Errorf("marking %s published: %w", id, err)
		}
	}
	return nil
}

func (r *Relay) prune(ctx context.Context) {
	cutoff := db.TimeOf(time.Now().Add(-r.cfg.Retention))
	if _, err := r.db.ExecContext(ctx, `DELETE FROM outbox_events WHERE published_at IS NOT NULL AND published_at < $1`, cutoff); err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("pruning outbox", "err", err)
	}
}

// Pending returns how many events await publishing.
func Pending(ctx context.Context, q db.Querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&n)
	return n, err
}
