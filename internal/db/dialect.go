package db

import (
	"context"
	"strconv"
	"strings"
)

// LockClause returns clause, a row-locking suffix such as " FOR UPDATE",
// " FOR SHARE" or " FOR UPDATE SKIP LOCKED", on PostgreSQL, and "" on
// SQLite, where a write transaction already excludes every other writer.
// It keeps that engine difference out of the stores that lock rows.
func (t *Tx) LockClause(clause string) string {
	if t.db.engine == Postgres {
		return clause
	}
	return ""
}

// maxInsertParams bounds the parameters of one InsertRows statement
// (SQLite's limit is 32766; smaller statements also parse faster).
const maxInsertParams = 8000

// InsertRows writes rows (each with the same number of values) into the
// table and columns of head ("INSERT INTO t (a, b)") with one multi-row
// statement per chunk, each followed by tail (e.g. an ON CONFLICT
// clause). SQLite gets plain ? placeholders: modernc binds numbered ?N
// slowly in big statements.
func (t *Tx) InsertRows(ctx context.Context, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	per := max(1, maxInsertParams/cols)
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		b.Grow(len(head) + len(tail) + len(chunk)*cols*5)
		b.WriteString(head)
		b.WriteString(" VALUES ")
		args := make([]any, 0, len(chunk)*cols)
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				if t.db.engine == SQLite {
					b.WriteByte('?')
				} else {
					b.WriteByte('$')
					b.WriteString(strconv.Itoa(len(args) + j + 1))
				}
			}
			b.WriteByte(')')
			args = append(args, r...)
		}
		b.WriteString(tail)
		if _, err := t.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
