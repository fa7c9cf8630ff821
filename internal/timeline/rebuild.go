package timeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// TimelineRebuild is what a rebuild of the timeline read and indexed.
type TimelineRebuild struct {
	Events     int   `json:"events" doc:"events of the tenant the stream held, of the types the timeline indexes"`
	Indexed    int   `json:"indexed" doc:"of those, the events that name a customer, each written again"`
	DurationMS int64 `json:"duration_ms"`
}

// rebuildBatch events are read and indexed at a time.
const rebuildBatch = 500

// Rebuild indexes again the caller's tenant's events that the events
// stream still holds (seven days), from the stream's first event to the
// last one published when it began, writing each entry afresh: entries
// lost from the table come back, and entries indexed before the way an
// event type is read changed are rewritten. It reads every tenant's
// events of the indexed types and keeps the caller's; the consumer goes
// on meanwhile (both write the same rows). Errors: "bus_unavailable"
// without a bus.
func (s *Service) Rebuild(ctx context.Context) (TimelineRebuild, error) {
	var res TimelineRebuild
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return res, err
	}
	if s.bus == nil {
		return res, abacus.Errorf(abacus.KindUnavailable, "bus_unavailable", "this process has no events stream to rebuild the timeline from")
	}
	start := time.Now()
	if err := outbox.Provision(ctx, s.bus); err != nil {
		return res, err
	}
	stream, err := s.bus.JetStream().Stream(ctx, outbox.Stream)
	if err != nil {
		return res, fmt.Errorf("opening stream %s: %w", outbox.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("reading stream %s: %w", outbox.Stream, err)
	}
	last := info.State.LastSeq
	subjects := families()
	for i, f := range subjects {
		subjects[i] = outbox.SubjectPrefix + f
	}
	// An ordered consumer: ephemeral, no acks, gone when this returns.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		return res, fmt.Errorf("reading stream %s: %w", outbox.Stream, err)
	}
	for done := last == 0; !done; {
		batch, err := cons.Fetch(rebuildBatch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return res, fmt.Errorf("reading stream %s: %w", outbox.Stream, err)
		}
		var events []outbox.Event
		got := 0
		for m := range batch.Messages() {
			got++
			if meta, err := m.Metadata(); err == nil && meta.Sequence.Stream >= last {
				done = true // later events are the consumer's
			}
			if e, err := outbox.EventOf(m); err == nil && e.TenantID == tenant {
				events = append(events, e)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return res, fmt.Errorf("reading stream %s: %w", outbox.Stream, err)
		}
		n, err := s.index(ctx, events, true)
		if err != nil {
			return res, err
		}
		res.Events, res.Indexed = res.Events+len(events), res.Indexed+n
		done = done || got == 0 // nothing of these types up to the end
	}
	res.DurationMS = time.Since(start).Milliseconds()
	s.log.Info("timeline rebuilt from the events stream", "tenant_id", tenant, "events", res.Events, "indexed", res.Indexed,
		"duration_ms", res.DurationMS)
	return res, nil
}
