package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// Get returns subscription id with its current period, or
// "subscription_not_found".
func (s *Service) Get(ctx context.Context, id string) (Subscription, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Subscription{}, err
	}
	sub, err := load(ctx, s.db, tenant, id, false)
	if err != nil {
		return Subscription{}, err
	}
	return s.withPeriod(sub, s.now()), nil
}

// List returns a page of subscriptions ordered by id, of one customer
// when customerID is set.
func (s *Service) List(ctx context.Context, customerID string, pg catalog.Page) (catalog.List[Subscription], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return catalog.List[Subscription]{}, err
	}
	limit := pg.Limit
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := `SELECT ` + subCols + ` FROM subscriptions WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, pg.Cursor}
	if customerID != "" {
		q += ` AND customer_id = $3`
		args = append(args, customerID)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id LIMIT %d`, limit+1), args...)
	if err != nil {
		return catalog.List[Subscription]{}, fmt.Errorf("listing subscriptions: %w", err)
	}
	defer rows.Close()
	out := catalog.List[Subscription]{Data: []Subscription{}}
	now := s.now()
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return out, err
		}
		out.Data = append(out.Data, s.withPeriod(sub, now))
	}
	if len(out.Data) > limit {
		out.Data = out.Data[:limit]
		out.NextCursor = out.Data[limit-1].ID
	}
	return out, rows.Err()
}

// History returns every change of subscription id, oldest first.
func (s *Service) History(ctx context.Context, id string) ([]Change, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := load(ctx, s.db, tenant, id, false); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, type, from_status, to_status, effective_at, data, created_at FROM subscription_changes
		WHERE tenant_id = $1 AND subscription_id = $2 ORDER BY id`, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	defer rows.Close()
	out := []Change{}
	for rows.Next() {
		var c Change
		var from, to, data string
		var at, created db.Time
		if err := rows.Scan(&c.ID, &c.Type, &from, &to, &at, &data, &created); err != nil {
			return nil, err
		}
		c.FromStatus, c.ToStatus, c.EffectiveAt, c.Data, c.CreatedAt = Status(from), Status(to), at.Time, json.RawMessage(data), created.Time
		out = append(out, c)
	}
	return out, rows.Err()
}

// Phases returns the subscription's phases that overlap p, clipped to it
// (all phases when p is zero). Billing prices each phase's in-arrears
// fees on its own quantity, and the usage of consecutive phases on one
// version once per period.
func (s *Service) Phases(ctx context.Context, id string, p period.Period) ([]Phase, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := load(ctx, s.db, tenant, id, false); err != nil {
		return nil, err
	}
	all, err := loadPhases(ctx, s.db, tenant, id)
	if err != nil || p.Start.IsZero() {
		return all, err
	}
	out := []Phase{}
	for _, ph := range all {
		end := p.End
		if ph.End != nil {
			end = minTime(*ph.End, p.End)
		}
		if c, ok := p.Clip(ph.Start, end); ok {
			ph.Start = c.Start
			e := c.End
			ph.End = &e
			out = append(out, ph)
		}
	}
	return out, nil
}

// PendingProrations returns the proration lines not yet invoiced.
func (s *Service) PendingProrations(ctx context.Context, id string) ([]Proration, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	by, err := readProrations(ctx, s.db, `WHERE tenant_id = $1 AND subscription_id = $2 AND invoiced_at IS NULL`, tenant, id)
	if err != nil {
		return nil, err
	}
	if by[id] == nil {
		return []Proration{}, nil
	}
	return by[id], nil
}

// MarkProrationsInvoiced records, inside billing's transaction tx, that
// the prorations with the given ids are on an invoice.
func MarkProrationsInvoiced(ctx context.Context, tx *db.Tx, tenant string, ids []string, at time.Time) error {
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE subscription_prorations SET invoiced_at = $3 WHERE tenant_id = $1 AND id = $2`,
			tenant, id, db.TimeOf(at)); err != nil {
			return fmt.Errorf("marking proration %s invoiced: %w", id, err)
		}
	}
	return nil
}

// Version returns the plan version with id, for billing.
func (s *Service) Version(ctx context.Context, id string) (catalog.Version, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return catalog.Version{}, err
	}
	return s.cat.LoadVersion(ctx, s.db, tenant, id)
}

// PhasePricing returns the pricing of phase ph (its version with its
// overrides) and its fee quantities, ready for pricing.Quote.
func (s *Service) PhasePricing(ctx context.Context, ph Phase) (pricing.PlanPricing, map[string]decimal.Decimal, error) {
	v, err := s.Version(ctx, ph.VersionID)
	if err != nil {
		return pricing.PlanPricing{}, nil, err
	}
	pp := Pricing(v, ph.Overrides)
	return pp, Quantities(pp, ph.Quantity), nil
}

// Advance performs the time-driven transitions due at now for every
// tenant (trial ends, scheduled plan changes, ends of canceled
// subscriptions) and evaluates usage thresholds of live subscriptions. It
// is idempotent, and safe with several workers on PostgreSQL (rows are
// claimed with FOR UPDATE SKIP LOCKED). A subscription whose transition
// fails on its own is logged and left due (billing holds its cycle), and
// the others go on; the error returned is one no subscription could get
// past (the database is gone). It returns how many subscriptions changed.
func (s *Service) Advance(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC().Truncate(time.Microsecond)
	total := 0
	var failed []string // left due in this call
	for {
		n, claimed, err := s.advanceBatch(ctx, now, failed, "")
		if err != nil && len(claimed) > 0 && ctx.Err() == nil {
			s.log.Warn("advancing subscriptions failed; advancing them one by one", "subscriptions", len(claimed), "err", err)
			n, err = 0, nil
			for _, id := range claimed {
				k, _, err := s.advanceBatch(ctx, now, nil, id)
				if err != nil {
					if ctx.Err() != nil {
						return total, ctx.Err()
					}
					s.log.Error("advancing a subscription failed; it stays due and is tried again on the next run", "subscription", id, "err", err)
					failed = append(failed, id)
				}
				n += k
			}
		}
		if err != nil {
			return total, err
		}
		total += n
		if len(claimed) < advanceBatchSize {
			break
		}
	}
	if err := s.evaluateAll(ctx, now); err != nil {
		return total, err
	}
	return total, nil
}

const advanceBatchSize = 100

// advanceBatch applies the transitions due at now of up to
// advanceBatchSize subscriptions in one transaction, leaving out those in
// skip, or of subscription only when it is set. It returns how many it
// changed and the ids it claimed, also when it failed and nothing was
// written.
func (s *Service) advanceBatch(ctx context.Context, now time.Time, skip []string, only string) (n int, claimed []string, err error) {
	touched := map[[2]string]bool{}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		args := []any{db.TimeOf(now)}
		q := `SELECT ` + subCols + ` FROM subscriptions WHERE next_action_at IS NOT NULL AND next_action_at <= $1`
		if only != "" {
			args = append(args, only)
			q += ` AND id = $2`
		}
		if len(skip) > 0 {
			q += ` AND id NOT IN (` + db.Placeholders(len(args)+1, len(skip)) + `)`
			for _, id := range skip {
				args = append(args, id)
			}
		}
		q += ` ORDER BY next_action_at, id LIMIT ` + strconv.Itoa(advanceBatchSize)
		q += tx.LockClause(` FOR UPDATE SKIP LOCKED`) // concurrent advancers take disjoint subscriptions
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("finding due subscriptions: %w", err)
		}
		var due []Subscription
		for rows.Next() {
			sub, err := scanSub(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, sub)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		claimed = claimed[:0]
		for _, sub := range due {
			claimed = append(claimed, sub.ID)
		}
		for i := range due {
			if err := s.applyDue(ctx, tx, &due[i], now); err != nil {
				return fmt.Errorf("advancing %s: %w", due[i].ID, err)
			}
			due[i].UpdatedAt = now
			if err := s.save(ctx, tx, due[i]); err != nil {
				return err
			}
			touched[[2]string{due[i].tenant, due[i].CustomerID}] = true
		}
		n = len(due)
		return nil
	})
	if err != nil {
		return 0, claimed, err
	}
	for k := range touched {
		s.invalidate(k[0], k[1])
	}
	return n, claimed, nil
}

// Run calls Advance every interval until ctx ends (the worker of the
// subscriptions role). Errors are logged and retried on the next tick.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Advance(ctx, s.clock.Now()); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "advancing subscriptions", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
