package webhooks

import (
	"context"
	"net/http"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// record writes finished attempts, many per transaction (group commit),
// until d.results closes.
func (d *Dispatcher) record() {
	ctx := context.Background()
	batch := make([]result, 0, 256)
	for r := range d.results {
		batch = append(batch[:0], r)
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-d.results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		for d.recordBatch(ctx, batch) != nil {
			// Unrecorded attempts stay leased and are retried when the lease
			// ends (at least once), so keep trying rather than drop them.
			time.Sleep(time.Second)
		}
	}
}

// recordBatch records attempts in one transaction: the successes, the
// common case, with a few statements for the whole batch; failures one by
// one, as each decides a retry or disables its endpoint.
func (d *Dispatcher) recordBatch(ctx context.Context, batch []result) error {
	var ok []result
	observing := d.s.observing()
	err := d.s.db.InTx(ctx, func(tx *db.Tx) error {
		ok = ok[:0]
		var steps []Outcome
		for _, r := range batch {
			if r.ok() {
				ok = append(ok, r)
				if observing {
					steps = append(steps, attemptSteps(r, nil)...)
				}
				continue
			}
			next, err := d.s.recordOne(ctx, tx, r)
			if err != nil {
				return err
			}
			if observing {
				steps = append(steps, attemptSteps(r, next)...)
			}
		}
		if err := recordDelivered(ctx, tx, ok); err != nil {
			return err
		}
		return d.s.observe(ctx, tx, steps)
	})
	if err != nil {
		d.s.log.Error("recording webhook attempts; retrying", "err", err)
	}
	return err
}

// recordOne records a failed attempt and what follows from it: the
// message's retry or its end, the endpoint's failure streak, and
// disabling the endpoint after a 410 or FailingDisableAfter of failures.
// It returns when the message is tried next (nil: never).
func (s *Service) recordOne(ctx context.Context, tx *db.Tx, r result) (*time.Time, error) {
	status, next := StatusFailed, r.at
	var nextPtr *time.Time
	if r.retryable() {
		if delay, ok := s.retryDelay(r.c.attempts+1, r.retryAfter); ok {
			status, next = StatusPending, r.at.Add(delay)
			nextPtr = &next
		}
	}
	if err := insertAttempt(ctx, tx, r, nextPtr); err != nil {
		return nil, err
	}
	if err := updateMessage(ctx, tx, r, status, next); err != nil {
		return nil, err
	}
	since, err := endpointFailed(ctx, tx, r.c.endpoint, r.at)
	if err != nil {
		return nil, err
	}
	switch {
	case r.status == http.StatusGone:
		return nextPtr, s.disable(ctx, tx, r.c.tenant, r.c.endpoint, ReasonGone, nil, r.at)
	case r.at.Sub(since) >= FailingDisableAfter:
		return nextPtr, s.disable(ctx, tx, r.c.tenant, r.c.endpoint, ReasonFailing, &since, r.at)
	}
	return nextPtr, nil
}

func (s *Service) disable(ctx context.Context, tx *db.Tx, tenant, endpoint, reason string, since *time.Time, at time.Time) error {
	url, err := disable(ctx, tx, endpoint, reason, at)
	if err != nil || url == "" {
		return err
	}
	s.log.Warn("webhook endpoint disabled", "tenant", tenant, "endpoint", endpoint, "reason", reason)
	_, err = EndpointDisabled.Record(ctx, tx, tenant, endpoint, at, EndpointDisabledEvent{
		EndpointID: endpoint, URL: url, Reason: reason, FailingSince: since, DisabledAt: at})
	return err
}
