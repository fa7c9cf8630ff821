package db_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// hookBundle is a table the tests write to and a hook that records, in
// the same table, that it ran and what it saw.
type hookBundle struct {
	d   *db.DB
	ran []string
}

func setupHook(t *testing.T, d *db.DB) *hookBundle {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), `CREATE TABLE hooked (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return &hookBundle{d: d}
}

// hook returns a hook named name that inserts a row "name" after checking
// that it sees the transaction's own writes, then fails with err.
func (b *hookBundle) hook(name string, err error) db.CommitHook {
	return func(ctx context.Context, tx *db.Tx) error {
		var n int
		if e := tx.QueryRowContext(ctx, `SELECT count(*) FROM hooked`).Scan(&n); e != nil {
			return e
		}
		b.ran = append(b.ran, name)
		if _, e := tx.ExecContext(ctx, `INSERT INTO hooked (id) VALUES ($1)`, name); e != nil {
			return e
		}
		return err
	}
}

func (b *hookBundle) rows(t *testing.T) []string {
	t.Helper()
	rows, err := b.d.QueryContext(context.Background(), `SELECT id FROM hooked ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestCommitHookCommitsWithTheTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupHook(t, d)
		ctx := db.WithCommitHook(db.WithCommitHook(context.Background(), b.hook("h1", nil)), b.hook("h2", nil))
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO hooked (id) VALUES ('a')`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// ExecContext runs the hooks too: h1's second row is a unique
		// violation, which must take b back with it.
		if _, err := d.ExecContext(ctx, `INSERT INTO hooked (id) VALUES ('b')`); !db.IsUniqueViolation(err) {
			t.Fatalf("ExecContext with hooks returned %v, want h1's unique violation", err)
		}
		if got, want := b.rows(t), []string{"a", "h1", "h2"}; !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
		if want := []string{"h1", "h2", "h1"}; !slices.Equal(b.ran, want) {
			t.Fatalf("hooks ran %v, want %v (in the order added, once per transaction)", b.ran, want)
		}
	})
}

func TestCommitHookErrorRollsBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupHook(t, d)
		lost := errors.New("claim lost")
		ctx := db.WithCommitHook(context.Background(), b.hook("h", lost))
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO hooked (id) VALUES ('a')`)
			return err
		})
		if !errors.Is(err, lost) {
			t.Fatalf("InTx returned %v, want the hook's error", err)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO hooked (id) VALUES ('b')`); !errors.Is(err, lost) {
			t.Fatalf("ExecContext returned %v, want the hook's error", err)
		}
		if got := b.rows(t); len(got) != 0 {
			t.Fatalf("rows %v committed, want none: the hook failed", got)
		}
		// Without hooks on the context, nothing runs.
		if _, err := d.ExecContext(context.Background(), `INSERT INTO hooked (id) VALUES ('c')`); err != nil {
			t.Fatal(err)
		}
		if got := b.rows(t); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("rows %v, want [c]", got)
		}
	})
}
