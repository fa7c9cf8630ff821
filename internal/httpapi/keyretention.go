package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// DefaultKeyRetention is how long an Idempotency-Key is kept after the
// request that first used it when nothing else is configured: a day, as
// the large payment APIs keep theirs.
const DefaultKeyRetention = 24 * time.Hour

// KeyRetentionConfig configures KeyRetention. Zero values take the
// defaults.
type KeyRetentionConfig struct {
	// Window is how long a key is kept after its first request
	// (DefaultKeyRetention).
	Window time.Duration
	// Every is how often the old keys are looked for (a minute).
	Every time.Duration
	// Batch is how many keys one transaction deletes at most (1,000).
	Batch int
}

// KeyRetention deletes Idempotency-Key rows older than its window, oldest
// first, in transactions of at most Batch rows, so no giant DELETE holds
// the writer or fills the WAL. A purged key is simply new again: a request
// sent with it later runs as a first request. Claims still in progress are
// minutes old at most and never reach the window (the configuration
// refuses one under an hour, http.idempotency_retention).
//
// The rows of every tenant go (the job spans tenants, like the outbox's
// own pruning). Several processes may run it at once: on PostgreSQL each
// batch skips rows another one has locked.
type KeyRetention struct {
	db    *db.DB
	cfg   KeyRetentionConfig
	clock abacus.Clock
	log   *slog.Logger
}

// NewKeyRetention returns the retention of d's Idempotency-Key rows.
func NewKeyRetention(d *db.DB, cfg KeyRetentionConfig, clock abacus.Clock, log *slog.Logger) *KeyRetention {
	if cfg.Window <= 0 {
		cfg.Window = DefaultKeyRetention
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if clock == nil {
		clock = abacus.SystemClock{}
	}
	return &KeyRetention{db: d, cfg: cfg, clock: clock, log: log}
}

// Run purges at once and then every Every, until ctx ends. A failed purge
// is logged and tried again at the next tick.
func (k *KeyRetention) Run(ctx context.Context) error {
	t := time.NewTicker(k.cfg.Every)
	defer t.Stop()
	for {
		if n, err := k.Purge(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("purging old Idempotency-Keys", "err", err, "purged", n)
		} else if n > 0 {
			k.log.Debug("purged old Idempotency-Keys", "purged", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Purge deletes every key created before now minus the window, a batch
// per transaction, and returns how many it deleted.
func (k *KeyRetention) Purge(ctx context.Context) (int64, error) {
	cutoff := k.clock.Now().Add(-k.cfg.Window)
	var total int64
	for {
		n, err := k.PurgeBatch(ctx, cutoff)
		total += n
		if err != nil || n < int64(k.cfg.Batch) {
			return total, err
		}
	}
}

// PurgeBatch deletes at most Batch keys created before cutoff, oldest
// first, in one transaction, and returns how many it deleted.
func (k *KeyRetention) PurgeBatch(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := k.db.InTx(ctx, func(tx *db.Tx) error {
		// The batch is read through idempotency_keys_created (migration
		// 0096) on both engines; rows a live request holds are skipped on
		// PostgreSQL and taken at a later tick.
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1 AND (tenant_id, key) IN
			(SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2`+
			tx.LockClause(" FOR UPDATE SKIP LOCKED")+`)`, db.TimeOf(cutoff), k.cfg.Batch)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deleting Idempotency-Keys created before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
