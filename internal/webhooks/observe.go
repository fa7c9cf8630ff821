package webhooks

import (
	"context"
	"strconv"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// Steps of a message an Observer is told of.
const (
	StepQueued    = "queued"    // the message was created for the endpoint
	StepRetried   = "retried"   // an attempt after the first started
	StepDelivered = "delivered" // the endpoint answered 2xx
	StepFailed    = "failed"    // an attempt failed; NextAttemptAt when it is retried
)

// Outcome is one step of one message.
type Outcome struct {
	Tenant, MessageID, EndpointID string
	Step                          string
	// Set on StepQueued only: what the message carries, and where to.
	EventType, AggregateType, AggregateID, URL string
	Attempt                                    int
	Reason                                     string // why an attempt failed
	NextAttemptAt                              *time.Time
	At                                         time.Time
}

// Observer is told the steps of messages inside the transaction that
// records them (so a step is observed if and only if it is recorded); an
// error rolls the transaction back, and it is retried like any failure to
// record. The app wires one so invoices show their webhook deliveries.
type Observer func(ctx context.Context, tx *db.Tx, steps []Outcome) error

// Observe sets the observer (nil: none). Set it before the consumer and
// dispatcher run.
func (s *Service) Observe(o Observer) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

func (s *Service) observing() bool { return s.observer.Load() != nil }

func (s *Service) observe(ctx context.Context, tx *db.Tx, steps []Outcome) error {
	if o := s.observer.Load(); o != nil && len(steps) > 0 {
		return (*o)(ctx, tx, steps)
	}
	return nil
}

// attemptSteps are the steps of a finished attempt: retried when it was
// not the first, then delivered or failed (next: the retry, nil if none).
func attemptSteps(r result, next *time.Time) []Outcome {
	base := Outcome{Tenant: r.c.tenant, MessageID: r.c.id, EndpointID: r.c.endpoint, Attempt: r.c.attempts + 1}
	var out []Outcome
	if r.c.attempts > 0 {
		s := base
		s.Step, s.At = StepRetried, r.at
		out = append(out, s)
	}
	s := base
	s.Step, s.At = StepDelivered, r.at.Add(r.latency)
	if !r.ok() {
		s.Step, s.Reason, s.NextAttemptAt = StepFailed, failureReason(r), next
	}
	return append(out, s)
}

func failureReason(r result) string {
	if r.status == 0 {
		return r.errText
	}
	if r.errText != "" {
		return "HTTP " + strconv.Itoa(r.status) + ": " + r.errText
	}
	return "HTTP " + strconv.Itoa(r.status)
}
