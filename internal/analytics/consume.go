package analytics

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer on outbox.Stream that
// feeds the projection.
const ConsumerName = "analytics"

// batchSize bounds one batch: one transaction per batch.
const batchSize = 500

// Types are the domain event types the projection consumes.
var Types = []string{"subscription.>", "invoice.>", "payment.>", "coupon.>"}

// Run is the analytics role until ctx ends: it consumes the domain events
// the projection needs, in stream order, in batches of up to batchSize
// (one transaction each). A batch that fails is retried in place
// (outbox.Subscription.InOrder) with a delay growing by a second per
// attempt, up to 30 s: the fold depends on order, so a later event must
// never be folded before an earlier one that failed.
func (s *Service) Run(ctx context.Context, bus *natsbus.Bus) error {
	return outbox.ConsumeBatches(ctx, bus, s.subscription(), func(ctx context.Context, events []outbox.Event) error {
		_, err := s.Apply(ctx, events)
		return err
	})
}

// subscription is the projection's durable consumer. AckWait stays at the
// 5 minutes the consumer was created with (a batch of 500 folds in well
// under a second, but a PostgreSQL failover may hold it longer).
func (s *Service) subscription() outbox.Subscription {
	return outbox.Subscription{Durable: ConsumerName, Types: Types, Batch: batchSize, AckWait: 5 * time.Minute,
		Backoff: time.Second, InOrder: true, Log: s.log}
}
