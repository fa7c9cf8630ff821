package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Service journals domain events, folds them into figures and answers
// the analytics queries.
type Service struct {
	db       *db.DB
	versions Versions
	clock    abacus.Clock
	log      *slog.Logger
	ports    Ports
}

// Ports are the other modules' read APIs the per-customer and aging
// answers use; each may be nil (the answer then leaves that part out).
type Ports struct {
	Balances     Balances
	Aging        Aging
	Usage        Usage        // usage trends (metering)
	Owners       Owners       // a usage subject's customer (catalog)
	Entitlements Entitlements // a customer's usage against its quotas (subscriptions)
	Devices      Devices      // a customer's connected devices (end users, realtime)
	Spikes       Spikes       // per-customer usage spikes (risk)
}

// NewService returns a Service over d. versions prices subscriptions'
// MRR (catalog.Service).
func NewService(d *db.DB, versions Versions, clock abacus.Clock, log *slog.Logger, ports Ports) *Service {
	if clock == nil {
		clock = abacus.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: d, versions: versions, clock: clock, log: log, ports: ports}
}

// errUnreadable marks an event whose payload does not decode: it is
// skipped (logged), since no retry can make it readable.
var errUnreadable = errors.New("unreadable event")

// Apply journals the events whose ids are new and folds them into the
// figures, in one transaction and in order. An event already journaled
// (a redelivery) changes nothing. It returns how many events were new.
// Unreadable events are logged and skipped; any other error leaves
// nothing written, and the caller retries the batch.
func (s *Service) Apply(ctx context.Context, events []outbox.Event) (int, error) {
	var n int
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := lock(ctx, tx); err != nil {
			return err
		}
		facts := make([]Fact, 0, len(events))
		for _, e := range events {
			f, ok, err := factOf(ctx, tx, s.versions, e)
			if errors.Is(err, errUnreadable) {
				s.log.Error("analytics: skipping an unreadable event", "event", e.ID, "type", e.Type, "tenant", e.TenantID, "err", err)
				continue
			}
			if err != nil {
				return err
			}
			if ok {
				facts = append(facts, f)
			}
		}
		fresh, err := journal(ctx, tx, facts)
		if err != nil {
			return err
		}
		l, err := prefetch(ctx, tx, fresh)
		if err != nil {
			return err
		}
		p := newProjection(l)
		for _, f := range fresh {
			if err := p.apply(f); err != nil {
				return err
			}
		}
		n = len(fresh)
		return p.write(ctx, tx)
	})
	return n, err
}

// RebuildReport is what a rebuild did.
type RebuildReport struct {
	Events     int   `json:"events" doc:"journaled events folded"`
	DurationMS int64 `json:"duration_ms"`
}

// Rebuild recomputes tenant's figures ("" = every tenant's) from the
// journal: the derived rows are deleted and the whole journal is folded
// again, in order, in one transaction. The result equals what the
// incremental path produced.
func (s *Service) Rebuild(ctx context.Context, tenant string) (RebuildReport, error) {
	start := time.Now()
	var res RebuildReport
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := lock(ctx, tx); err != nil {
			return err
		}
		p := newRebuild()
		n, err := eachFact(ctx, tx, tenant, p.apply)
		if err != nil {
			return err
		}
		res.Events = n
		if err := clearDerived(ctx, tx, tenant); err != nil {
			return err
		}
		return p.write(ctx, tx)
	})
	if err != nil {
		return res, fmt.Errorf("rebuilding analytics: %w", err)
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

// RebuildTenant is Rebuild for the tenant on ctx.
func (s *Service) RebuildTenant(ctx context.Context) (RebuildReport, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return RebuildReport{}, err
	}
	return s.Rebuild(ctx, tenant)
}

func lock(ctx context.Context, tx *db.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE analytics_lock SET rebuilt_at = rebuilt_at WHERE id = 1`); err != nil {
		return fmt.Errorf("locking analytics: %w", err)
	}
	return nil
}
