package analytics

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/abacusbilling/abacus/internal/db"
)

// PostgreSQL's side of the projection's batch: each statement takes its
// rows as arrays, so its text never changes with the batch (one prepared
// statement and plan per connection, instead of a new one for each row
// count), and what SQLite does in two statements is one round trip here.

// journalPostgres inserts facts (no id twice) in their order and returns
// the ones whose event id was new: one statement.
func journalPostgres(ctx context.Context, tx *db.Tx, facts []Fact) ([]Fact, error) {
	n := len(facts)
	tenant, id, typ, cus, ref, cur := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	a1, a2, a3, status, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at := make([]int64, n)
	for i, f := range facts {
		tenant[i], id[i], typ[i], at[i], cus[i], ref[i], cur[i] = f.Tenant, f.EventID, f.Type, f.At.UnixMicro(), f.Customer, f.Ref, f.Currency
		a1[i], a2[i], a3[i], status[i], detail[i] = f.Amount.String(), f.Amount2.String(), f.Amount3.String(), f.Status, f.Detail
	}
	// ORDER BY ord: seq follows the batch's order, which the fold (and a
	// rebuild, reading by seq) depends on.
	rows, err := tx.QueryContext(ctx, `INSERT INTO analytics_events (`+journalCols+`)
		SELECT `+journalCols+` FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) WITH ORDINALITY
			AS u(`+journalCols+`, ord)
		ORDER BY ord
		ON CONFLICT (event_id) DO NOTHING
		RETURNING event_id`, tenant, id, typ, at, cus, ref, cur, a1, a2, a3, status, detail)
	if err != nil {
		return nil, fmt.Errorf("journaling %d events: %w", n, err)
	}
	defer rows.Close()
	added := make(map[string]bool, n)
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("journaling %d events: %w", n, err)
		}
		added[e] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journaling %d events: %w", n, err)
	}
	fresh := make([]Fact, 0, len(added))
	for _, f := range facts {
		if added[f.EventID] {
			fresh = append(fresh, f)
		}
	}
	return fresh, nil
}

// lookupPostgres is lookup: one index probe per id. An IN list (or
// = ANY) lets the planner scan every row of the tenant and filter,
// which it chose while the table's statistics were older than a period
// close's growth (analytics_documents: 0 → 50,000 rows in a minute), at a
// cost growing with the table; the LATERAL subquery (OFFSET 0 keeps it
// from being flattened into a join) leaves it only the probe.
func lookupPostgres(ctx context.Context, tx *db.Tx, table, key, cols, tenant string, ids []string) (*sql.Rows, error) {
	return tx.QueryContext(ctx, `SELECT t.* FROM unnest($2::text[]) AS k(id),
		LATERAL (SELECT `+cols+` FROM `+table+` WHERE tenant_id = $1 AND `+key+` = k.id OFFSET 0) AS t`, tenant, ids)
}

// deletePostgres deletes tenant's rows of table whose key is one of ids.
func deletePostgres(ctx context.Context, tx *db.Tx, table, key, tenant string, ids []string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1 AND `+key+` = ANY($2::text[])`, tenant, ids)
	return err
}
