package usage

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// keysChunkPostgres keys go in one statement: two array parameters,
// however many keys.
const keysChunkPostgres = 20_000

func (w *eventWriter) keyArrays(keys []timeHash) {
	w.times, w.hashes = w.times[:0], w.hashes[:0]
	for _, k := range keys {
		w.times = append(w.times, k.t)
		w.hashes = append(w.hashes, k.h)
	}
}

// insertKeysPostgres inserts keys without ON CONFLICT: PostgreSQL's
// speculative insertion roughly doubles the cost of each key, and a
// conflict aborts the transaction anyway, so a duplicate turns into
// errRetryCareful.
func (w *eventWriter) insertKeysPostgres(ctx context.Context, tx *db.Tx, keys []timeHash) (int64, error) {
	w.keyArrays(keys)
	res, err := tx.ExecContext(ctx, `INSERT INTO usage_event_keys (time, h)
		SELECT * FROM unnest($1::bigint[], $2::bigint[])`, w.times, w.hashes)
	if db.IsUniqueViolation(err) {
		return 0, errRetryCareful
	}
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	return n, nil
}

func (w *eventWriter) insertKeysReturningPostgres(ctx context.Context, tx *db.Tx, keys []timeHash) (map[timeHash]bool, error) {
	w.keyArrays(keys)
	stored := make(map[timeHash]bool, len(keys))
	err := scanKeys(ctx, tx, `INSERT INTO usage_event_keys (time, h)
		SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING RETURNING time, h`, []any{w.times, w.hashes}, stored)
	return stored, err
}
