package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		applied, err := d.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Fatalf("second Migrate applied %v, want nothing", applied)
		}
		all, _ := db.Migrations(d.Engine())
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(all) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(all))
		}
	})
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
				"ten_a", "A", db.TimeOf(time.Now())); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx returned %v, want boom", err)
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM tenants`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("rolled-back insert is visible: %d rows", n)
		}
	})
}

func TestTimeRoundTripAndPlaceholderOrder(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		at := time.Date(2026, 2, 28, 23, 59, 59, 123456000, time.UTC)
		// $2 before $1 in the text: numbered placeholders must still bind by number.
		if _, err := d.ExecContext(ctx, `INSERT INTO tenants (created_at, id, name) VALUES ($3, $2, $1)`,
			"Name", "ten_b", db.TimeOf(at)); err != nil {
			t.Fatal(err)
		}
		var got db.Time
		var name string
		if err := d.QueryRowContext(ctx, `SELECT name, created_at FROM tenants WHERE id = $1`, "ten_b").Scan(&name, &got); err != nil {
			t.Fatal(err)
		}
		if name != "Name" || !got.Equal(at) {
			t.Fatalf("got (%q, %v), want (Name, %v)", name, got.Time, at)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
			"ten_b", "again", db.TimeOf(at)); !db.IsUniqueViolation(err) {
			t.Fatalf("duplicate id: got %v, want a unique violation", err)
		}
	})
}

func TestFailedMigrationRollsBackFully(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// A migration that fails halfway must leave nothing behind.
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE half_done (x INTEGER)`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `CREATE TABLE broken (`)
			return err
		})
		if err == nil {
			t.Fatal("broken DDL succeeded")
		}
		_, err = d.ExecContext(ctx, `INSERT INTO half_done (x) VALUES (1)`)
		if err == nil {
			t.Fatal("table from the failed transaction exists")
		}
	})
}

// TestPreparedStatementsAcrossTransactions runs the same prepared
// statements in several transactions (prepared on the first, reused after),
// one of them rolled back, and reads back what committed.
func TestPreparedStatementsAcrossTransactions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		for i, name := range []string{"A", "B", "C", "D"} {
			err := d.InTx(ctx, func(tx *db.Tx) error {
				if _, err := tx.ExecPrepared(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
					"ten_"+name, name, db.TimeOf(time.Now())); err != nil {
					return err
				}
				rows, err := tx.QueryPrepared(ctx, `SELECT count(*) FROM tenants WHERE id LIKE $1`, "ten_%")
				if err != nil {
					return err
				}
				defer rows.Close()
				var n int
				for rows.Next() {
					if err := rows.Scan(&n); err != nil {
						return err
					}
				}
				want := i + 1
				if name == "D" {
					want = i // C was rolled back
				}
				if n != want {
					t.Errorf("transaction %s sees %d tenants, want %d", name, n, want)
				}
				if name == "C" {
					return boom
				}
				return rows.Err()
			})
			if name == "C" && !errors.Is(err, boom) {
				t.Fatalf("transaction C: %v, want boom", err)
			} else if name != "C" && err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM tenants WHERE id IN ('ten_A', 'ten_B', 'ten_D')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("%d of A, B, D committed, want 3", n)
		}
	})
}

// TestQueryPreparedSeesEveryCommit: a query kept prepared on the read
// pool answers what the latest commit wrote, from concurrent callers (so
// on several of the pool's connections), and a missing row is
// sql.ErrNoRows through ScanFirst.
func TestQueryPreparedSeesEveryCommit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		const q = `SELECT name FROM tenants WHERE id = $1`
		var name string
		rows, err := d.QueryPrepared(ctx, q, "ten_p")
		if err := db.ScanFirst(rows, err, &name); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("before the insert: %v, want sql.ErrNoRows", err)
		}
		for i := range 5 {
			want := fmt.Sprint("name ", i)
			if _, err := d.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name`, "ten_p", want, db.TimeOf(time.Now())); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var got string
					rows, err := d.QueryPrepared(ctx, q, "ten_p")
					if err := db.ScanFirst(rows, err, &got); err != nil || got != want {
						t.Errorf("after commit %d: %q, %v; want %q", i, got, err, want)
					}
				}()
			}
			wg.Wait()
		}
	})
}
