package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxPrepared bounds the statements kept prepared on the SQLite writer.
// Callers that vary a statement's text (multi-row VALUES) should use a few
// fixed sizes so the cache holds them all.
const maxPrepared = 256

// stmtCache keeps statements prepared on the SQLite writer across
// transactions. modernc prepares (parses and plans) every ExecContext
// anew, which for a long multi-row INSERT costs as much as running it. A
// statement cannot be prepared on the writer while a transaction holds it
// (one connection), so a statement first used inside a transaction is
// prepared on the transaction alone and, once the transaction ends and the
// writer is free, on the writer for the ones that follow.
type stmtCache struct {
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]struct{}
}

// get returns the statement prepared for q, or nil after noting that q
// should be prepared once the writer is free.
func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.stmts[q]; s != nil {
		return s
	}
	if len(c.stmts)+len(c.pending) < maxPrepared {
		if c.pending == nil {
			c.pending = map[string]struct{}{}
		}
		c.pending[q] = struct{}{}
	}
	return nil
}

// preparePending prepares the noted statements on w. Failure is harmless
// (the statement is prepared per transaction again), so it is not
// reported.
func (c *stmtCache) preparePending(ctx context.Context, w *sql.DB) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	qs := make([]string, 0, len(c.pending))
	for q := range c.pending {
		qs = append(qs, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, q := range qs {
		s, err := w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.stmts == nil {
			c.stmts = map[string]*sql.Stmt{}
		}
		if old := c.stmts[q]; old != nil {
			_ = old.Close()
		}
		c.stmts[q] = s
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := closeAll(c.stmts)
	c.stmts = nil
	return err
}

func closeAll(stmts map[string]*sql.Stmt) error {
	var errs []error
	for _, s := range stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// stmt returns the transaction's handle on a prepared q (already rebound).
func (t *Tx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s := t.stmts[q]; s != nil {
		return s, nil
	}
	var s *sql.Stmt
	if ps := t.db.stmts.get(q); ps != nil {
		s = t.tx.StmtContext(ctx, ps)
	} else {
		var err error
		if s, err = t.tx.PrepareContext(ctx, q); err != nil {
			return nil, fmt.Errorf("preparing statement: %w", err)
		}
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = s
	return s, nil
}

// ExecPrepared is ExecContext through a statement that stays prepared on
// the SQLite writer across transactions; for statements a hot path runs
// often with the same text. On PostgreSQL it is ExecContext (pgx caches
// prepared statements per connection already).
func (t *Tx) ExecPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.db.engine != SQLite {
		return t.tx.ExecContext(ctx, query, args...)
	}
	s, err := t.stmt(ctx, t.db.rebind(query))
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryPrepared is QueryContext as ExecPrepared is ExecContext.
func (t *Tx) QueryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.db.engine != SQLite {
		return t.tx.QueryContext(ctx, query, args...)
	}
	s, err := t.stmt(ctx, t.db.rebind(query))
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// QueryPrepared is QueryContext through a statement kept prepared on the
// SQLite read pool, for a query a hot path runs often with the same text:
// modernc parses and plans every query anew, which for a one-row lookup
// costs several times what running it does. Up to maxPrepared texts are
// kept; others run as QueryContext. On PostgreSQL it is QueryContext.
func (d *DB) QueryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if d.engine != SQLite {
		return d.QueryContext(ctx, query, args...)
	}
	q := d.rebind(query)
	s, err := d.readStmts.get(ctx, d.read, q)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return d.read.QueryContext(ctx, q, args...)
	}
	return s.QueryContext(ctx, args...)
}

// readStmtCache holds statements prepared on the read pool; database/sql
// prepares each on the pool's connections as they run it.
type readStmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// get returns q prepared on r, or nil when maxPrepared texts are kept.
func (c *readStmtCache) get(ctx context.Context, r *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.stmts[q]; s != nil {
		return s, nil
	}
	if len(c.stmts) >= maxPrepared {
		return nil, nil
	}
	s, err := r.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("preparing statement: %w", err)
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = s
	return s, nil
}

func (c *readStmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := closeAll(c.stmts)
	c.stmts = nil
	return err
}

// ScanFirst scans the first row of rows (with the error of the query that
// returned them) into dest and closes rows; sql.ErrNoRows when there is
// none. It is QueryRowContext for a query run through QueryPrepared,
// which has no one-row counterpart.
func ScanFirst(rows *sql.Rows, err error, dest ...any) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
