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

func (w *eventWriter) insertKeysPostgres(ctx context.Context, tx *db.Tx, keys []timeHash) (int64, error) {
	w.keyArrays(keys)
	res, err := tx.ExecContext(ctx, `INSERT INTO usage_event_keys (time, h)
		SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING`, w.times, w.hashes)
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	return n, nil
}

func (w *eventWriter) storedKeysPostgres(ctx context.Context, tx *db.Tx, keys []timeHash) (map[timeHash]bool, error) {
	w.keyArrays(keys)
	stored := map[timeHash]bool{}
	err := scanKeys(ctx, tx, `SELECT e.time, e.h FROM usage_event_keys e
		JOIN unnest($1::bigint[], $2::bigint[]) AS k (t, h) ON e.time = k.t AND e.h = k.h`, []any{w.times, w.hashes}, stored)
	return stored, err
}
