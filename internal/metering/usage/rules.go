package usage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// TenantRules are what ingestion checks for one tenant beyond the
// CloudEvents rules: its late-event window and its event-type schemas.
type TenantRules struct {
	LateWindow time.Duration    // the tenant's window, or 0 for the configured default
	Schemas    metering.Schemas // nil when the tenant has none
}

// Rules caches every tenant's TenantRules for the ingest hot path. A
// tenant without settings or schemas costs one map lookup per request.
//
// Entries are loaded on first use and dropped when a rule changes: at
// once in the process that made the change, and within PollInterval in
// other processes, which watch metering_rules_version. The cache holds at
// most MaxTenants tenants; past that it starts over.
//
// Compiled schemas are kept apart, by document, so that dropping a tenant
// (any rule change drops every tenant) does not compile its unchanged
// schemas again; Watch compiles the stored ones in the background at
// start, so the first request of a tenant finds them ready.
type Rules struct {
	db  *db.DB
	log *slog.Logger
	// PollInterval is how often Watch reads the rules version; default 1s.
	PollInterval time.Duration
	// MaxTenants bounds the cache; default 10,000.
	MaxTenants int

	m       sync.Map // tenant → *TenantRules (nil: nothing beyond defaults)
	n       atomic.Int64
	loads   singleflight.Group
	mu      sync.Mutex // serialises loads against invalidation
	gen     uint64     // bumped by Invalidate, under mu
	version atomic.Int64

	compiled  sync.Map // sha256 of a document → compiledSchema
	nCompiled atomic.Int64
}

// compiledSchema is a document's compile result; errors are kept too, so
// a stored schema that is refused costs its refusal once.
type compiledSchema struct {
	s   *metering.Schema
	err error
}

// NewRules returns an empty cache over d.
func NewRules(d *db.DB, log *slog.Logger) *Rules {
	return &Rules{db: d, log: log, PollInterval: time.Second, MaxTenants: 10_000}
}

// For returns the tenant's rules (nil when it has none). Errors are the
// database's, on a cache miss.
func (r *Rules) For(ctx context.Context, tenant string) (*TenantRules, error) {
	if v, ok := r.m.Load(tenant); ok {
		return v.(*TenantRules), nil
	}
	// Concurrent requests of one tenant after a change share one load.
	v, err, _ := r.loads.Do(tenant, func() (any, error) {
		r.mu.Lock()
		gen := r.gen
		r.mu.Unlock()
		tr, err := r.load(ctx, tenant)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		// A change committed while loading bumped gen: the loaded rules
		// may be stale, so they serve these requests but are not cached.
		if gen == r.gen {
			if r.n.Load() >= int64(r.MaxTenants) {
				r.m.Clear()
				r.n.Store(0)
			}
			if _, loaded := r.m.LoadOrStore(tenant, tr); !loaded {
				r.n.Add(1)
			}
		}
		r.mu.Unlock()
		return tr, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*TenantRules), nil
}

// Invalidate drops every cached tenant.
func (r *Rules) Invalidate() {
	r.mu.Lock()
	r.gen++
	r.m.Clear()
	r.n.Store(0)
	r.mu.Unlock()
}

// Watch compiles the stored schemas in the background, then polls the
// rules version until ctx ends and invalidates the cache when another
// process changed a rule.
func (r *Rules) Watch(ctx context.Context) {
	warmed := make(chan struct{})
	go func() { defer close(warmed); r.warm(ctx) }()
	defer func() { <-warmed }()
	t := time.NewTicker(r.PollInterval)
	defer t.Stop()
	for {
		var v int64
		err := r.db.QueryRowContext(ctx, `SELECT version FROM metering_rules_version WHERE name = 'global'`).Scan(&v)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.WarnContext(ctx, "reading metering rules version", "err", err)
		case err == nil && r.version.Swap(v) != v:
			r.Invalidate()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bumpRules marks the rules changed for every process.
func bumpRules(ctx context.Context, tx *db.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE metering_rules_version SET version = version + 1 WHERE name = 'global'`); err != nil {
		return fmt.Errorf("bumping metering rules version: %w", err)
	}
	return nil
}

// compile compiles a schema document once per distinct document.
func (r *Rules) compile(doc []byte) (*metering.Schema, error) {
	key := sha256.Sum256(doc)
	if v, ok := r.compiled.Load(key); ok {
		c := v.(compiledSchema)
		return c.s, c.err
	}
	s, err := metering.CompileSchema(doc)
	if r.nCompiled.Add(1) > int64(r.MaxTenants) {
		r.compiled.Clear()
		r.nCompiled.Store(1)
	}
	r.compiled.Store(key, compiledSchema{s, err})
	return s, err
}

// warm loads the rules of every tenant with a schema, one tenant at a
// time, so that start-up compiles them off the request path. A tenant's
// request that comes first shares its load; other tenants wait for none.
func (r *Rules) warm(ctx context.Context) {
	// Across tenants on purpose: this is the process's own cache.
	rows, err := r.db.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM event_type_schemas`)
	if err != nil {
		r.log.WarnContext(ctx, "listing tenants with event type schemas", "err", err)
		return
	}
	var tenants []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			break
		}
		tenants = append(tenants, t)
	}
	rows.Close()
	for _, t := range tenants {
		if ctx.Err() != nil {
			return
		}
		if _, err := r.For(ctx, t); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "loading tenant metering rules", "tenant_id", t, "err", err)
		}
	}
}

// load reads and compiles one tenant's rules. A stored schema that is
// refused now (stored before a stricter bound, or no longer compiling) is
// logged and not applied rather than blocking the tenant's ingestion: its
// events are checked by the CloudEvents rules only (docs/metering.md).
func (r *Rules) load(ctx context.Context, tenant string) (*TenantRules, error) {
	q, log := r.db, r.log
	var tr TenantRules
	var secs int64
	err := q.QueryRowContext(ctx, `SELECT late_window FROM metering_settings WHERE tenant_id = $1`, tenant).Scan(&secs)
	switch {
	case err == nil:
		tr.LateWindow = time.Duration(secs) * time.Second
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("reading metering settings: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT event_type, schema FROM event_type_schemas WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading event type schemas: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, doc string
		if err := rows.Scan(&typ, &doc); err != nil {
			return nil, fmt.Errorf("reading event type schemas: %w", err)
		}
		s, err := r.compile([]byte(doc))
		if err != nil {
			log.ErrorContext(ctx, "stored event type schema is refused; it is not applied until replaced", "tenant_id", tenant, "event_type", typ, "err", err)
			continue
		}
		if tr.Schemas == nil {
			tr.Schemas = metering.Schemas{}
		}
		tr.Schemas[typ] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading event type schemas: %w", err)
	}
	if tr.LateWindow == 0 && tr.Schemas == nil {
		return nil, nil
	}
	return &tr, nil
}
