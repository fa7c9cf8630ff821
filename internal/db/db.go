// Package db is the storage seam: one handle over SQLite (modernc, pure Go)
// or PostgreSQL (pgx pool), chosen by configuration. Business code writes
// one SQL text with PostgreSQL-style placeholders ($1, $2, …); on SQLite
// they are rewritten to numbered ?N parameters, which bind the same way.
// Queries that cannot be shared branch on Engine() in per-engine files.
//
// Conventions every table follows so the same SQL runs on both engines:
// ids are TEXT with a type prefix; times are BIGINT unix microseconds (see
// Time); money and quantities are TEXT decimals computed in Go; every
// tenant-owned table has a tenant_id column that every query filters on.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// DB is a database handle. On SQLite writes go through one connection
// (SQLite has one writer; queuing in Go beats busy-waiting in SQLite) and
// reads through a pool; on PostgreSQL both share the pgx pool.
type DB struct {
	engine Engine
	write  *sql.DB
	read   *sql.DB
	pool   *pgxpool.Pool
	stmts  stmtCache
	// readStmts are statements kept prepared on the read pool (SQLite).
	readStmts readStmtCache
	ckpt      *checkpointer // SQLite: the WAL checkpoints, off the writer
}

// Options for Open.
type Options struct {
	// URL is a postgres:// URL; empty selects SQLite at SQLitePath.
	URL        string
	SQLitePath string
	MaxConns   int
	// CheckpointEvery is how often SQLite's WAL is checkpointed in the
	// background (default 250ms); see checkpointer.
	CheckpointEvery time.Duration
}

// Open connects and checks the connection. It does not migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.MaxConns < 1 {
		o.MaxConns = 8
	}
	if o.URL == "" {
		return openSQLite(ctx, o)
	}
	return openPostgres(ctx, o)
}

func openSQLite(ctx context.Context, o Options) (*DB, error) {
	// WAL lets readers run beside the writer; synchronous=NORMAL in WAL
	// mode is durable across process crashes (not power loss) and keeps
	// commits off fsync. _txlock=immediate takes the write lock at BEGIN,
	// so two writers never deadlock upgrading read locks.
	// wal_autocheckpoint(0): no commit checkpoints; checkpointer does it.
	dsn := "file:" + o.SQLitePath + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)&_txlock=immediate"
	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite %s: %w", o.SQLitePath, err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("opening SQLite %s: %w", o.SQLitePath, err)
	}
	read.SetMaxOpenConns(o.MaxConns)
	// Keep every read connection open: database/sql keeps only 2 idle by
	// default, and opening a SQLite connection (pragmas, schema parse)
	// cost ~40% of a risk decision's CPU when concurrent reads churned them.
	read.SetMaxIdleConns(o.MaxConns)
	d := &DB{engine: SQLite, write: write, read: read}
	if err := write.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("opening SQLite %s: %w", o.SQLitePath, err)
	}
	if d.ckpt, err = startCheckpointer(ctx, o.SQLitePath, dsn, d.write, o.CheckpointEvery); err != nil {
		d.Close()
		return nil, fmt.Errorf("opening SQLite %s: %w", o.SQLitePath, err)
	}
	return d, nil
}

func openPostgres(ctx context.Context, o Options) (*DB, error) {
	pc, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	if !strings.Contains(o.URL, "pool_max_conns") {
		pc.MaxConns = int32(o.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	s := stdlib.OpenDBFromPool(pool)
	return &DB{engine: Postgres, write: s, read: s, pool: pool}, nil
}

// Engine tells which engine this is, for the few dialect-only queries.
func (d *DB) Engine() Engine { return d.engine }

// Pool returns the pgx pool on PostgreSQL (for COPY and batches), else nil.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close closes the handle. It is safe to call twice.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	errs = append(errs, d.ckpt.stop())
	errs = append(errs, d.stmts.close())
	errs = append(errs, d.readStmts.close())
	if d.read != nil && d.read != d.write {
		errs = append(errs, d.read.Close())
	}
	if d.write != nil {
		errs = append(errs, d.write.Close())
	}
	if d.pool != nil {
		d.pool.Close()
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.write.PingContext(ctx) }

// Querier is what both *DB and *Tx offer, so store functions can run
// inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ExecContext runs a statement on the writer. With commit hooks on ctx
// (WithCommitHook) it runs in a transaction of its own, so they commit
// with it.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if len(commitHooks(ctx)) > 0 {
		var res sql.Result
		err := d.InTx(ctx, func(tx *Tx) (err error) {
			res, err = tx.ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	return d.write.ExecContext(ctx, d.rebind(query), args...)
}

// QueryContext runs a query on the read pool.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.read.QueryContext(ctx, d.rebind(query), args...)
}

// QueryRowContext runs a one-row query on the read pool.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.read.QueryRowContext(ctx, d.rebind(query), args...)
}

// Tx is a transaction; its methods rebind placeholders like DB's.
type Tx struct {
	tx *sql.Tx
	db *DB
	// afterCommit hooks run once the transaction has committed.
	afterCommit []func()
	// stmts are this transaction's handles on prepared statements.
	stmts map[string]*sql.Stmt
}

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.rebind(query), args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.rebind(query), args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.rebind(query), args...)
}

// Engine tells which engine the transaction runs on.
func (t *Tx) Engine() Engine { return t.db.engine }

// AfterCommit registers f to run after a successful commit (for example to
// wake the outbox relay). It does not run on rollback.
func (t *Tx) AfterCommit(f func()) { t.afterCommit = append(t.afterCommit, f) }

// InTx runs fn in a transaction on the writer: committed when fn returns
// nil, rolled back otherwise (and on panic). ctx's commit hooks
// (WithCommitHook) run after fn, in the transaction.
func (d *DB) InTx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	tx := &Tx{tx: stx, db: d}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
		// The writer is free again: prepare what this transaction asked
		// for, so the next ones reuse it.
		d.stmts.preparePending(ctx, d.write)
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = runCommitHooks(ctx, tx); err != nil {
		return err
	}
	if err = stx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	for _, f := range tx.afterCommit {
		f()
	}
	return nil
}

var rebound sync.Map // query text → SQLite text

// rebind turns $N placeholders into ?N on SQLite. A '$' inside a quoted
// string literal is left alone.
func (d *DB) rebind(q string) string {
	if d.engine != SQLite || !strings.Contains(q, "$") {
		return q
	}
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q))
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '\'' {
			inQuote = !inQuote
		}
		if c == '$' && !inQuote && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
			c = '?'
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

// IsUniqueViolation reports whether err is a unique-constraint violation
// on either engine.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // SQLite
		strings.Contains(msg, "SQLSTATE 23505") // PostgreSQL
}

// Placeholders returns n placeholders from $start on, comma-separated,
// for an IN list.
func Placeholders(start, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", start+i)
	}
	return b.String()
}
