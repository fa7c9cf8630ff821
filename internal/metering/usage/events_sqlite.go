package usage

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// keysChunkSQLite keys at most go in one statement (two parameters each,
// under SQLite's 32766); smaller chunks take power-of-two sizes so their
// statements stay prepared.
const keysChunkSQLite = 4096

var (
	// OR IGNORE, not ON CONFLICT DO NOTHING: the columns are NOT NULL, and
	// a multi-row statement that could abort on a NOT NULL violation makes
	// SQLite keep a statement journal of every page it touches. The keys
	// are never NULL, so the two mean the same here.
	insertKeysSQLite = &valuesSQL{
		head: `INSERT OR IGNORE INTO usage_event_keys (time, h) VALUES `,
		row:  `(#,#)`,
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
	res, err := tx.ExecPrepared(ctx, insertKeysSQLite.get(db.SQLite, len(keys)), args...)
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

// insertKeysReturning inserts keys and returns those that were new.
func (w *eventWriter) insertKeysReturning(ctx context.Context, tx *db.Tx, keys []timeHash) (map[timeHash]bool, error) {
	if tx.Engine() == db.Postgres {
		return w.insertKeysReturningPostgres(ctx, tx, keys)
	}
	args := w.args[:0]
	for _, k := range keys {
		args = append(args, k.t, k.h)
	}
	w.args = args
	stored := make(map[timeHash]bool, len(keys))
	err := scanKeys(ctx, tx, insertKeysSQLite.get(db.SQLite, len(keys))+` RETURNING time, h`, args, stored)
	clear(args)
	return stored, err
}

func scanKeys(ctx context.Context, tx *db.Tx, q string, args []any, into map[timeHash]bool) error {
	rows, err := tx.QueryPrepared(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("inserting event keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k timeHash
		if err := rows.Scan(&k.t, &k.h); err != nil {
			return fmt.Errorf("inserting event keys: %w", err)
		}
		into[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("inserting event keys: %w", err)
	}
	return nil
}

// keysChunkLen is how many of the left keys the next statement claims.
func keysChunkLen(tx *db.Tx, left int) int {
	if tx.Engine() == db.Postgres {
		return min(left, keysChunkPostgres) // two array parameters, one text
	}
	return chunkLen(left, keysChunkSQLite)
}
