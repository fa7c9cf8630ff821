package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// The running totals (analytics_running): per tenant, currency and day
// that has a daily row, the sum of the daily rows up to it. A week or
// month series then reads one row per point boundary instead of every
// day: a point's sums are the difference of the totals at its end and
// before its start, and the running MRR, customers and outstanding are
// those totals themselves.

type curKey struct{ tenant, currency string }

// writeRunning recomputes the running totals of every tenant and currency
// whose daily rows p changed, from the first changed day on: the total
// before it plus the daily rows from it (read back in tx, already
// written). Usually that is today's row alone.
func (p *projection) writeRunning(ctx context.Context, tx *db.Tx) error {
	first := map[curKey]int{}
	for k := range p.days {
		c := curKey{k.tenant, k.currency}
		if d, ok := first[c]; !ok || k.day < d {
			first[c] = k.day
		}
	}
	keys := make([]curKey, 0, len(first))
	for c := range first {
		keys = append(keys, c)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].tenant+keys[i].currency < keys[j].tenant+keys[j].currency })
	var rows [][]any
	for _, c := range keys {
		total, _, err := runningAt(ctx, tx, c, first[c]-1)
		if err != nil {
			return err
		}
		q, err := tx.QueryContext(ctx, `SELECT day, `+dayCols+` FROM analytics_daily WHERE tenant_id = $1 AND currency = $2 AND day >= $3 ORDER BY day`,
			c.tenant, c.currency, first[c])
		if err != nil {
			return fmt.Errorf("reading analytics_daily: %w", err)
		}
		for q.Next() {
			var day int
			r, err := scanDay(q.Scan, &day)
			if err != nil {
				q.Close()
				return err
			}
			total = total.plus(r)
			rows = append(rows, append([]any{c.tenant, c.currency, day}, dayValues(total)...))
		}
		q.Close()
		if err := q.Err(); err != nil {
			return err
		}
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_running (tenant_id, currency, day, `+dayCols+`)`, ` ON CONFLICT (tenant_id, currency, day) DO UPDATE SET
		new_mrr = excluded.new_mrr, expansion = excluded.expansion, contraction = excluded.contraction, churn = excluded.churn,
		reactivation = excluded.reactivation, new_customers = excluded.new_customers, reactivated_customers = excluded.reactivated_customers,
		churned_customers = excluded.churned_customers, trials_started = excluded.trials_started, trials_converted = excluded.trials_converted,
		trials_lapsed = excluded.trials_lapsed, invoiced = excluded.invoiced, collected = excluded.collected, refunded = excluded.refunded,
		outstanding = excluded.outstanding, usage_invoiced = excluded.usage_invoiced`, rows); err != nil {
		return fmt.Errorf("writing analytics_running: %w", err)
	}
	return nil
}

// dayValues are r's dayCols values, in order.
func dayValues(r dayRow) []any {
	return []any{r.newMRR.String(), r.expansion.String(), r.contraction.String(), r.churn.String(), r.reactivation.String(),
		r.newCustomers, r.reactivated, r.churned, r.trialsStarted, r.trialsConverted, r.trialsLapsed, r.invoiced.String(),
		r.collected.String(), r.refunded.String(), r.outstanding.String(), r.usage.String()}
}

// runningAt returns the running totals of c at the end of day (zero
// before any row; found false then).
func runningAt(ctx context.Context, q db.Querier, c curKey, day int) (dayRow, bool, error) {
	r, err := scanDay(q.QueryRowContext(ctx, `SELECT `+dayCols+` FROM analytics_running WHERE tenant_id = $1 AND currency = $2 AND day <= $3
		ORDER BY day DESC LIMIT 1`, c.tenant, c.currency, day).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return dayRow{}, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading analytics_running: %w", err)
	}
	return r, true, nil
}

// seriesFromRunning answers a week or month series from the running
// totals: per currency, one seek for the totals before the window and one
// per point.
func (s *Service) seriesFromRunning(ctx context.Context, w window) ([]bucket, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	currencies := []string{w.currency}
	if w.currency == "" {
		if currencies, err = s.currencies(ctx, tenant, w.to); err != nil {
			return nil, err
		}
	}
	spans := w.buckets()
	var out []bucket
	for _, cur := range currencies {
		c := curKey{tenant, cur}
		before, _, err := runningAt(ctx, s.db, c, w.from-1)
		if err != nil {
			return nil, err
		}
		for _, sp := range spans {
			end, _, err := runningAt(ctx, s.db, c, sp[1])
			if err != nil {
				return nil, err
			}
			monthAgo, _, err := runningAt(ctx, s.db, c, monthBefore(sp[1]))
			if err != nil {
				return nil, err
			}
			b := bucket{currency: cur, start: sp[0], end: sp[1], sum: end.minus(before), trailingUsage: end.usage.Sub(monthAgo.usage)}
			b.startMRR, b.startCustomers, _ = runOn(before, decimal.Zero, 0, decimal.Zero)
			b.endMRR, b.endCustomers, b.endOutstanding = runOn(end, decimal.Zero, 0, decimal.Zero)
			out = append(out, b)
			before = end
		}
	}
	return out, nil
}

// currencies are the currencies tenant has figures in by day to, by code.
func (s *Service) currencies(ctx context.Context, tenant string, to int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT currency FROM analytics_running WHERE tenant_id = $1 AND day <= $2 ORDER BY currency`, tenant, to)
	if err != nil {
		return nil, fmt.Errorf("reading analytics currencies: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (d dayRow) minus(o dayRow) dayRow {
	d.newMRR, d.expansion, d.contraction = d.newMRR.Sub(o.newMRR), d.expansion.Sub(o.expansion), d.contraction.Sub(o.contraction)
	d.churn, d.reactivation = d.churn.Sub(o.churn), d.reactivation.Sub(o.reactivation)
	d.newCustomers, d.reactivated, d.churned = d.newCustomers-o.newCustomers, d.reactivated-o.reactivated, d.churned-o.churned
	d.trialsStarted, d.trialsConverted, d.trialsLapsed = d.trialsStarted-o.trialsStarted, d.trialsConverted-o.trialsConverted, d.trialsLapsed-o.trialsLapsed
	d.invoiced, d.collected, d.refunded = d.invoiced.Sub(o.invoiced), d.collected.Sub(o.collected), d.refunded.Sub(o.refunded)
	d.outstanding, d.usage = d.outstanding.Sub(o.outstanding), d.usage.Sub(o.usage)
	return d
}
