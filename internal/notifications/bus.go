package notifications

import (
	"context"

	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable JetStream consumer triggers read domain
// events with; its position survives restarts.
const ConsumerName = "notifications"

// RunTriggers consumes the domain events (stream ABACUS_EVENTS) and turns
// each into notifications (HandleEvent), acknowledging it once that has
// committed. A redelivered event is recognised by its id. On first
// creation the consumer starts at the events published since this
// process built the service: a new deployment does not mail about the
// week of history in the stream. It returns when ctx ends.
func (s *Service) RunTriggers(ctx context.Context, bus *natsbus.Bus) error {
	return outbox.Consume(ctx, bus, outbox.Subscription{
		Durable: ConsumerName, Since: s.built, MaxDeliver: 20, Log: s.log,
	}, s.HandleEvent)
}
