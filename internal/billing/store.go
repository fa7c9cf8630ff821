package billing

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus/internal/db"
)

// Billing's engine differences outside single statements.

// cycleWorkers is how many workers bill cycles at once: on PostgreSQL
// several claim disjoint batches (SKIP LOCKED), so round trips overlap;
// SQLite has one writer.
func (s *Service) cycleWorkers() int {
	if s.db.Engine() == db.Postgres {
		return s.cfg.Workers
	}
	return 1
}

// insertRows writes rows (each with the same number of values) into the
// table and columns of head ("INSERT INTO t (a, b)"), followed by tail
// (e.g. an ON CONFLICT clause): unnested arrays on PostgreSQL, multi-row
// VALUES (db.Tx.InsertRows) on SQLite.
func insertRows(ctx context.Context, tx *db.Tx, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if tx.Engine() == db.Postgres {
		return insertUnnest(ctx, tx, head, tail, rows)
	}
	return tx.InsertRows(ctx, head, tail, rows)
}

// insertUnnest is insertRows on PostgreSQL: one statement whatever the
// row count, each column bound as one array and unnested on the server
// ("INSERT … SELECT * FROM unnest($1::text[], $2::bigint[], …)"). A
// multi-row VALUES list costs the server a parse and a type check per
// value and the client a parameter per value; arrays cost neither, which
// roughly halves the write time of a batch.
//
// A column's type comes from its Go values: db.Time, db.NullTime and
// integers are bigint (PostgreSQL narrows to integer on assignment);
// strings and untyped nils (nullStr) are text.
func insertUnnest(ctx context.Context, tx *db.Tx, head, tail string, rows [][]any) error {
	cols := len(rows[0])
	args := make([]any, cols)
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(" SELECT * FROM unnest(")
	for j := 0; j < cols; j++ {
		isInt := false
		for _, r := range rows {
			switch r[j].(type) {
			case db.Time, db.NullTime, int, int64:
				isInt = true
			}
			if r[j] != nil {
				break
			}
		}
		if j > 0 {
			b.WriteString(", ")
		}
		if isInt {
			col := make([]*int64, len(rows))
			for i, r := range rows {
				v, err := intValue(r[j])
				if err != nil {
					return fmt.Errorf("column %d: %w", j+1, err)
				}
				col[i] = v
			}
			args[j] = col
			fmt.Fprintf(&b, "$%d::bigint[]", j+1)
			continue
		}
		col := make([]*string, len(rows))
		for i, r := range rows {
			switch v := r[j].(type) {
			case nil:
			case string:
				col[i] = &v
			default:
				return fmt.Errorf("column %d: %T is neither text nor an integer", j+1, r[j])
			}
		}
		args[j] = col
		fmt.Fprintf(&b, "$%d::text[]", j+1)
	}
	b.WriteString(")")
	b.WriteString(tail)
	_, err := tx.ExecContext(ctx, b.String(), args...)
	return err
}

// intValue is v (an integer, db.Time or db.NullTime) as a nullable bigint.
func intValue(v any) (*int64, error) {
	var n int64
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int:
		n = int64(x)
	case int64:
		n = x
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return nil, err
		}
		if dv == nil {
			return nil, nil
		}
		i, ok := dv.(int64)
		if !ok {
			return nil, fmt.Errorf("%T is not an integer", dv)
		}
		n = i
	default:
		return nil, fmt.Errorf("%T is not an integer", v)
	}
	return &n, nil
}
