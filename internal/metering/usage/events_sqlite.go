package usage

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// keysChunkSQLite keys go in one statement (two parameters each, under
// SQLite's 32766). modernc prepares every statement anew, so fewer, longer
// statements win until parsing dominates.
const keysChunkSQLite = 4000

var (
	insertKeysSQLite = &valuesSQL{
		head: `INSERT INTO usage_event_keys (time, h) VALUES `,
		row:  `(#,#)`,
		tail: ` ON CONFLICT DO NOTHING`,
	}
	storedKeysSQLite = &valuesSQL{
		head: `WITH k (t, h) AS (VALUES `,
		row:  `(#,#)`,
		tail: `) SELECT e.time, e.h FROM k JOIN usage_event_keys e ON e.time = k.t AND e.h = k.h`,
	}
)

// insertKeys inserts keys (ON CONFLICT DO NOTHING) and returns how many
// were new.
func (w *eventWriter) insertKeys(ctx context.Context, tx *db.Tx, keys []timeHash) (int64, error) {
	if tx.Engine() == db.Postgres {
		return w.insertKeysPostgres(ctx, tx, keys)
	}
	args := w.args[:0]
	for _, k := range keys {
		args = append(args, k.t, k.h)
	}
	w.args = args
	res, err := tx.ExecContext(ctx, insertKeysSQLite.get(db.SQLite, len(keys)), args...)
	clear(args)
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inserting event keys: %w", err)
	}
	return n, nil
}

// storedKeys returns which of keys are stored.
func (w *eventWriter) storedKeys(ctx context.Context, tx *db.Tx, keys []timeHash) (map[timeHash]bool, error) {
	if tx.Engine() == db.Postgres {
		return w.storedKeysPostgres(ctx, tx, keys)
	}
	stored := map[timeHash]bool{}
	for lo := 0; lo < len(keys); lo += keyChunk {
		part := keys[lo:min(lo+keyChunk, len(keys))]
		args := w.args[:0]
		for _, k := range part {
			args = append(args, k.t, k.h)
		}
		w.args = args
		if err := scanKeys(ctx, tx, storedKeysSQLite.get(db.SQLite, len(part)), args, stored); err != nil {
			return nil, err
		}
	}
	return stored, nil
}

func scanKeys(ctx context.Context, tx *db.Tx, q string, args []any, into map[timeHash]bool) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("finding stored event keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k timeHash
		if err := rows.Scan(&k.t, &k.h); err != nil {
			return fmt.Errorf("finding stored event keys: %w", err)
		}
		into[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("finding stored event keys: %w", err)
	}
	return nil
}
