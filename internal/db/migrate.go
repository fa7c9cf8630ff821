package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// Migrations live in migrations/<engine>/NNNN_name.sql, one folder per
// engine. A landed file is never edited; a change is a new file. Modules
// take number ranges so parallel work does not collide:
//
//	0001–0099 platform
//	0100 identity (0150–0169 enduser, 0170–0179 its organizations, 0180–0189 enduser/oidc, 0190–0199 free)
//	0200 metering
//	0300 catalog (0350–0399 subscription)
//	0400 billing
//	0500 payments (0550–0599 payments/dunning)
//	0600 notifications (0630–0649 inapp, push, prefs; 0650–0699 webhooks)
//	0700 realtime (0750–0799 presence, moderation, limits)
//	0800 risk (0850–0899 risk graph, lists, labels, score)
//	0900 e-document exchange (0900–0949), 0950–0999 portal
//	1000–1049 analytics
//	1100 media (1100–1149; 1150–1199 nearby)
//	1200–1249 cluster (partition ownership, leases)
//	1250–1299 timeline (a customer's domain events)
//
// Which module owns a table is declared in its module.go (abacus.Module),
// not by the file that created it.
//
//go:embed migrations
var migrationFS embed.FS

// Migration is one schema change.
type Migration struct {
	Name string
	SQL  string
}

// Migrations returns the engine's migrations in order.
func Migrations(e Engine) ([]Migration, error) {
	dir := "migrations/" + string(e)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations for %s: %w", e, err)
	}
	var out []Migration
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+ent.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", ent.Name(), err)
		}
		out = append(out, Migration{Name: strings.TrimSuffix(ent.Name(), ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Migrate applies every pending migration in one transaction: all of them
// land or none does. It returns the names applied. Concurrent callers on
// PostgreSQL serialise on an advisory lock keyed by the schema; on SQLite
// on the write lock.
func (d *DB) Migrate(ctx context.Context) ([]string, error) {
	all, err := Migrations(d.engine)
	if err != nil {
		return nil, err
	}
	var applied []string
	err = d.InTx(ctx, func(tx *Tx) error {
		if d.engine == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':migrate', 0))`); err != nil {
				return fmt.Errorf("locking migrations: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		done := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			done[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range all {
			if done[m.Name] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying migration %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`,
				m.Name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("recording migration %s: %w", m.Name, err)
			}
			applied = append(applied, m.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}
