package dunning

import (
	"context"
	"errors"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Pass advances every run with a step due at now: reminders
// (dunning.reminder), retries (a charge through the collector;
// dunning.retry_failed, and dunning.payment_method_required on a hard
// decline, which is not retried until the customer sets up another
// method), and the final action (dunning.exhausted). Runs are leased in
// batches, so runners on several nodes never work the same invoice; a run
// whose step failed is left to the next pass once its lease ends. A run
// whose next step is due too takes it in the same pass. It returns how
// many steps it took.
func (s *Service) Pass(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC().Truncate(time.Microsecond)
	total := 0
	for {
		runs, err := claim(ctx, s.db, now, now.Add(s.lease), s.owner, s.batch)
		if err != nil || len(runs) == 0 {
			return total, err
		}
		done := make([]Run, 0, len(runs))
		var evs []outbox.Event
		var dropped, started []Run
		for _, r := range runs {
			out, err := s.step(ctx, r, now)
			if err != nil {
				if ctx.Err() != nil {
					return total, ctx.Err()
				}
				s.failures.Inc()
				s.log.Error("dunning step failed; tried again when its lease ends", "tenant_id", r.tenant, "invoice_id", r.InvoiceID,
					"step", r.NextStep, "err", err)
				continue
			}
			switch {
			case out.drop:
				dropped = append(dropped, out.run)
				continue
			case out.run.NextStep != r.NextStep && r.NextStep == StepOverdue:
				started = append(started, out.run)
			}
			done = append(done, out.run)
			evs = append(evs, out.events...)
		}
		err = s.db.InTx(ctx, func(tx *db.Tx) error {
			if err := dropScheduled(ctx, tx, s.owner, dropped); err != nil {
				return err
			}
			if err := saveStarted(ctx, tx, s.owner, started); err != nil {
				return err
			}
			// a run whose lease ran out is another runner's now: its events are not ours to record
			kept, err := saveLeased(ctx, tx, done, s.owner)
			if err != nil {
				return err
			}
			keep := evs[:0]
			for _, e := range evs {
				if kept[e.AggregateID] {
					keep = append(keep, e)
				}
			}
			_, err = outbox.RecordBatch(ctx, tx, keep)
			return err
		})
		if err != nil {
			return total, err
		}
		total += len(done) + len(dropped)
	}
}

type stepped struct {
	run    Run
	events []outbox.Event
	drop   bool // a scheduled run whose invoice was settled before it was due
}

// step takes r's due step; its effects outside dunning's tables (a charge,
// a suspension) happen here, its own writes are returned.
func (s *Service) step(ctx context.Context, r Run, now time.Time) (stepped, error) {
	out := stepped{}
	steps := r.plan()
	r.UpdatedAt = now
	link, linked := "", false
	emit := func(k interface {
		New(string, string, time.Time, RunEvent) outbox.Event
	}, mod func(*RunEvent)) {
		e := r.event(now)
		if mod != nil {
			mod(&e)
		}
		if !linked {
			link, linked = s.linkOf(ctx, r), true
		}
		e.Link = link
		out.events = append(out.events, k.New(r.tenant, r.ID, now, e))
	}
	idx := min(r.StepIndex, len(steps)-1)
	switch r.NextStep {
	case StepOverdue:
		drop, err := s.overdue(ctx, &r)
		if err != nil || drop {
			out.run, out.drop = r, drop
			return out, err
		}
		emit(RunStarted, nil)
	case StepReminder:
		cur := steps[idx]
		emit(RunReminder, func(e *RunEvent) { e.Final = cur.Last })
		r.schedule(idx + 1)
	case StepRetry, StepRetryNow:
		next := idx
		if r.NextStep == StepRetry {
			next = idx + 1
		}
		if r.HardDeclined || s.collect == nil {
			r.schedule(next) // nothing to charge: wait for a new payment method
			break
		}
		attempt := r.Attempts + 1
		res, err := s.collect(tenantCtx(ctx, r.tenant), r.tenant, r.InvoiceID, attempt)
		if err != nil {
			return out, err
		}
		r.Attempts = attempt
		switch res.Outcome {
		case Succeeded:
			r.end(StatusRecovered, now)
			emit(RunRecovered, func(e *RunEvent) { e.Reason = "paid" })
			if err := s.restoreAfter(ctx, r); err != nil {
				return out, err
			}
			out.run = r
			return out, nil
		case Failed:
			r.DeclineCode, r.HardDeclined = res.DeclineCode, res.Hard
			r.schedule(next)
			emit(RunRetryFailed, nil)
			if res.Hard {
				emit(PaymentMethodRequired, nil)
			}
		default: // pending: the outcome arrives as an event
			r.schedule(next)
		}
	case StepFinal:
		if err := s.finalAction(ctx, &r); err != nil {
			return out, err
		}
		r.end(StatusExhausted, now)
		emit(RunExhausted, nil)
	}
	out.run = r
	return out, nil
}

// restoreAfter reactivates r's subscription once r's own row no longer
// counts (it is being saved as recovered in the pass's transaction, so it
// is checked without it).
func (s *Service) restoreAfter(ctx context.Context, r Run) error {
	if r.SubscriptionID == "" {
		return nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM dunning_runs WHERE tenant_id = $1 AND subscription_id = $2 AND status IN ('active', 'exhausted') AND id <> $3) +
		(SELECT count(*) FROM dunning_disputes WHERE tenant_id = $1 AND subscription_id = $2 AND status IN ('suspended', 'lost'))`,
		r.tenant, r.SubscriptionID, r.ID).Scan(&n)
	if err != nil || n > 0 {
		return err
	}
	_, err = s.subs.Reactivate(tenantCtx(ctx, r.tenant), r.SubscriptionID, "paid")
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil
	}
	return err
}

// finalAction takes r's policy's final action.
func (s *Service) finalAction(ctx context.Context, r *Run) error {
	tctx := tenantCtx(ctx, r.tenant)
	r.FinalAction = string(r.Policy.FinalAction)
	ignore := func(err error) error {
		if k := abacus.ErrorKind(err); k == abacus.KindConflict || k == abacus.KindNotFound {
			return nil // already in that state, or gone
		}
		return err
	}
	switch r.Policy.FinalAction {
	case Cancel:
		if r.SubscriptionID == "" {
			return nil
		}
		_, err := s.subs.Cancel(tctx, r.SubscriptionID, subscription.CancelInput{When: subscription.Now})
		return ignore(err)
	case MarkUncollectible:
		if err := ignore(s.billing.MarkUncollectible(tctx, r.tenant, r.InvoiceID)); err != nil {
			return err
		}
		return s.restoreAfter(ctx, *r)
	default:
		if r.SubscriptionID == "" {
			return nil
		}
		st, err := s.settingsOf(ctx, r.tenant)
		if err != nil {
			return err
		}
		in := subscription.SuspendInput{Reason: subscription.ReasonPaymentOverdue, Invoice: r.InvoiceID}
		if st.KeepPrepaidAccess {
			if in.AccessUntil, err = s.billing.PaidThrough(tctx, r.tenant, r.SubscriptionID); err != nil {
				return err
			}
		}
		_, err = s.subs.Suspend(tctx, r.SubscriptionID, in)
		return ignore(err)
	}
}

// Run calls Pass every interval until ctx ends (the dunning role's
// runner); errors are logged and retried on the next tick.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Pass(ctx, s.clock.Now()); err != nil && !errors.Is(err, context.Canceled) {
			s.log.ErrorContext(ctx, "dunning pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
