package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/natsbus"
)

// Subscription is one durable consumer of the domain events in Stream.
// Every module that reacts to events reads them through one, with
// Consume or ConsumeBatches, so all of them survive a JetStream restart,
// redeliver what failed with the same backoff and skip what cannot be read.
type Subscription struct {
	// Durable names the consumer. Nodes running the same subscription
	// share it, so each event is handled by one of them, and its position
	// survives restarts.
	Durable string
	// Types are the event types it reads; none means all of them.
	Types []string
	// Since is where the consumer starts when it does not exist yet: the
	// events published from then on (a new deployment does not act on the
	// history in the stream). Zero means the whole stream. An existing
	// consumer keeps its place.
	Since time.Time
	// Batch caps the events one call of a batch handler gets and how many
	// are pulled at once (default 64).
	Batch int
	// AckWait is how long handling may take before the event is delivered
	// again (default 2 minutes).
	AckWait time.Duration
	// MaxDeliver gives up on an event after that many deliveries (0: never).
	MaxDeliver int
	// Backoff is the delay before a failed event comes again, times its
	// deliveries so far, at most 10 minutes (default 10 s).
	Backoff time.Duration
	// InOrder (batch handlers only) retries a failed batch in place
	// instead of handing its events back to the stream: the handler sees
	// every event in stream order, which a fold that depends on order
	// (analytics) needs. The delay grows by Backoff per attempt as above
	// but stops at 30 s (inOrderMaxDelay): later events wait meanwhile.
	InOrder bool
	Log     *slog.Logger
}

// Consume hands each event to handle, one at a time in stream order, and
// acknowledges it once handle returns nil. An event handle fails is
// delivered again later, with a delay growing with its deliveries
// (Backoff), so handle must be idempotent by event id. It
// returns when ctx ends.
func Consume(ctx context.Context, bus *natsbus.Bus, sub Subscription, handle func(context.Context, Event) error) error {
	return run(ctx, bus, sub, func(ctx context.Context, msgs []jetstream.Msg, events []Event) {
		for i, e := range events {
			hctx, cancel := context.WithTimeout(ctx, sub.ackWait()/2)
			err := handle(hctx, e)
			cancel()
			settle(sub, msgs[i], e, err)
		}
	})
}

// ConsumeBatches hands the events to handle in batches of at most
// sub.Batch, in stream order, and acknowledges a batch once handle returns
// nil; a failed batch is delivered again later as Consume does.
func ConsumeBatches(ctx context.Context, bus *natsbus.Bus, sub Subscription, handle func(context.Context, []Event) error) error {
	return run(ctx, bus, sub, func(ctx context.Context, msgs []jetstream.Msg, events []Event) {
		err := handleBatch(ctx, sub, events, handle)
		for attempt := 1; err != nil && sub.InOrder; attempt++ {
			sub.log().Warn("handling a batch of domain events failed; retrying it in place", "consumer", sub.Durable,
				"events", len(events), "attempt", attempt, "err", err)
			for _, m := range msgs {
				_ = m.InProgress() // still ours: not redelivered while we retry
			}
			select {
			case <-ctx.Done():
				nakAll(msgs)
				return
			case <-time.After(sub.inOrderDelay(attempt)):
			}
			err = handleBatch(ctx, sub, events, handle)
		}
		for i, e := range events {
			settle(sub, msgs[i], e, err)
		}
	})
}

func handleBatch(ctx context.Context, sub Subscription, events []Event, handle func(context.Context, []Event) error) error {
	hctx, cancel := context.WithTimeout(ctx, sub.ackWait()/2)
	defer cancel()
	return handle(hctx, events)
}

// nakAll hands messages back to the stream at once.
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// EventOf reads a domain event back from the message the relay published.
func EventOf(m jetstream.Msg) (Event, error) {
	h := m.Headers()
	e := Event{ID: h.Get("Abacus-Event-Id"), TenantID: h.Get("Abacus-Tenant-Id"),
		Type: strings.TrimPrefix(m.Subject(), SubjectPrefix), Payload: m.Data()}
	e.AggregateType, e.AggregateID, _ = strings.Cut(h.Get("Abacus-Aggregate"), ":")
	e.Version, _ = strconv.Atoi(h.Get("Abacus-Event-Version"))
	e.CreatedAt, _ = time.Parse(time.RFC3339Nano, h.Get("Abacus-Event-Time"))
	if e.ID == "" || e.TenantID == "" || e.Type == "" {
		return e, fmt.Errorf("message %q lacks an event id, tenant or type header", m.Subject())
	}
	return e, nil
}

func (s Subscription) batch() int {
	if s.Batch > 0 {
		return s.Batch
	}
	return 64
}

func (s Subscription) ackWait() time.Duration {
	if s.AckWait > 0 {
		return s.AckWait
	}
	return 2 * time.Minute
}

func (s Subscription) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// retryDelay is the wait before the nth retry of a failed event.
func (s Subscription) retryDelay(n int) time.Duration {
	delay := s.Backoff
	if delay <= 0 {
		delay = 10 * time.Second
	}
	return min(time.Duration(n)*delay, 10*time.Minute)
}

// inOrderMaxDelay caps the wait before an in-place retry. Every later
// event of the consumer waits behind the failed batch, so once the cause
// is gone (a database back after a failover) the consumer should resume
// within seconds, not after the 10 minutes a redelivery may wait.
const inOrderMaxDelay = 30 * time.Second

// inOrderDelay is the wait before the nth in-place retry of a batch. It
// is also at most half the ack wait: the InProgress before the wait buys
// one ack wait, which the wait and the retry's handling (at most the
// other half) must fit in, or the stream redelivers the batch meanwhile.
func (s Subscription) inOrderDelay(n int) time.Duration {
	return min(s.retryDelay(n), inOrderMaxDelay, s.ackWait()/2)
}

// settle acknowledges a handled event or asks for it again later.
func settle(sub Subscription, m jetstream.Msg, e Event, err error) {
	if err == nil {
		_ = m.Ack()
		return
	}
	delay := sub.retryDelay(1)
	if meta, _ := m.Metadata(); meta != nil {
		delay = sub.retryDelay(int(meta.NumDelivered))
	}
	sub.log().Warn("handling a domain event failed; it is delivered again", "consumer", sub.Durable,
		"event_id", e.ID, "type", e.Type, "tenant_id", e.TenantID, "retry_in", delay, "err", err)
	_ = m.NakWithDelay(delay)
}

// run keeps the consumer going until ctx ends, making it again after a
// JetStream restart or a failure.
func run(ctx context.Context, bus *natsbus.Bus, sub Subscription, process func(context.Context, []jetstream.Msg, []Event)) error {
	for ctx.Err() == nil {
		err := consumeOnce(ctx, bus, sub, process)
		if ctx.Err() != nil {
			return nil
		}
		sub.log().Warn("domain event consumer stopped; starting again", "consumer", sub.Durable, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func consumeOnce(ctx context.Context, bus *natsbus.Bus, sub Subscription, process func(context.Context, []jetstream.Msg, []Event)) error {
	if err := Provision(ctx, bus); err != nil {
		return err
	}
	restarted := bus.Restarted()
	cons, err := ensureConsumer(ctx, bus, sub)
	if err != nil {
		return err
	}
	ch := make(chan jetstream.Msg, sub.batch())
	// Stopping must hand every message this consumer was sent back to the
	// stream at once; one left un-nak'd waits out the ack wait (minutes).
	// Two ways one could be lost: (1) cc.Stop discards what the client
	// holds for this subscription, and the server may still send to its
	// pull request (and redeliver a message nak'd here to it) until it
	// has seen the unsubscribe; so it is drained instead: unsubscribed
	// first, then every message already sent comes to the callback, which
	// naks it, and a nak travels after the unsubscribe. (2) A message put
	// into ch after ch was emptied: the callback holds mu while it hands
	// one over, and once stopped is set (under mu) it naks instead.
	var mu sync.RWMutex
	stopped, stopping := false, make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.RLock()
		defer mu.RUnlock()
		if stopped {
			_ = m.Nak()
			return
		}
		select {
		case ch <- m:
		case <-stopping:
			_ = m.Nak()
		case <-ctx.Done():
			_ = m.Nak() // stopping: back to the stream now, not after the ack wait
		}
	}, jetstream.PullMaxMessages(sub.batch()))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", sub.Durable, err)
	}
	defer func() {
		close(stopping)
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second): // a lost connection: nothing more comes
		}
		mu.Lock()
		stopped = true
		mu.Unlock()
		for _, m := range waiting(ch, cap(ch)) {
			_ = m.Nak() // pulled but not handled: for the next consumer at once
		}
	}()
	for {
		var first jetstream.Msg
		select {
		case first = <-ch:
		case <-restarted:
			return errors.New("JetStream restarted; the consumer is made again")
		case <-ctx.Done():
			return nil
		}
		msgs, events := readable(sub, append([]jetstream.Msg{first}, waiting(ch, sub.batch()-1)...))
		if len(events) > 0 {
			process(ctx, msgs, events)
		}
	}
}

// waiting takes up to n more messages that are already waiting.
func waiting(ch chan jetstream.Msg, n int) []jetstream.Msg {
	var more []jetstream.Msg
	for len(more) < n {
		select {
		case m := <-ch:
			more = append(more, m)
		default:
			return more
		}
	}
	return more
}

// readable reads the events of batch and acknowledges what is not a
// domain event: nothing can handle it, so it is never retried.
func readable(sub Subscription, batch []jetstream.Msg) ([]jetstream.Msg, []Event) {
	msgs := make([]jetstream.Msg, 0, len(batch))
	events := make([]Event, 0, len(batch))
	for _, m := range batch {
		e, err := EventOf(m)
		if err != nil {
			sub.log().Error("skipping an unreadable domain event", "consumer", sub.Durable, "err", err)
			_ = m.Ack()
			continue
		}
		msgs, events = append(msgs, m), append(events, e)
	}
	return msgs, events
}

func ensureConsumer(ctx context.Context, bus *natsbus.Bus, sub Subscription) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable: sub.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: sub.ackWait(),
		MaxAckPending: sub.batch() * 4, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if sub.MaxDeliver > 0 {
		cfg.MaxDeliver = sub.MaxDeliver
	}
	switch len(sub.Types) {
	case 0:
		cfg.FilterSubject = SubjectPrefix + ">"
	case 1:
		cfg.FilterSubject = SubjectPrefix + sub.Types[0]
	default:
		for _, t := range sub.Types {
			cfg.FilterSubjects = append(cfg.FilterSubjects, SubjectPrefix+t)
		}
	}
	if !sub.Since.IsZero() {
		since := sub.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	old, err := bus.JetStream().Consumer(ctx, Stream, sub.Durable)
	switch {
	case err == nil:
		// Where a consumer starts cannot be updated: keep its own.
		oc := old.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartTime, cfg.OptStartSeq = oc.DeliverPolicy, oc.OptStartTime, oc.OptStartSeq
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("reading consumer %s: %w", sub.Durable, err)
	}
	cons, err := bus.JetStream().CreateOrUpdateConsumer(ctx, Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", sub.Durable, err)
	}
	return cons, nil
}
