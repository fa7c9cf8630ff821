package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus/internal/natsbus"
)

// publish puts n domain events on the stream as the relay does, and one
// message that is not a domain event (no headers) after the first.
func publish(t *testing.T, b *natsbus.Bus, n int) []string {
	t.Helper()
	ctx := context.Background()
	if err := Provision(ctx, b); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		e := Event{ID: fmt.Sprintf("evt_%03d", i), TenantID: "ten_1", Type: "thing.changed", Version: 1,
			AggregateType: "thing", AggregateID: "thing_1", Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`), CreatedAt: time.Now()}
		m := &nats.Msg{Subject: e.Subject(), Data: e.Payload, Header: nats.Header{}}
		m.Header.Set("Abacus-Event-Id", e.ID)
		m.Header.Set("Abacus-Tenant-Id", e.TenantID)
		m.Header.Set("Abacus-Aggregate", "thing:thing_1")
		m.Header.Set("Abacus-Event-Version", "1")
		m.Header.Set("Abacus-Event-Time", e.CreatedAt.UTC().Format(time.RFC3339Nano))
		if _, err := b.JetStream().PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		if i == 0 {
			if _, err := b.JetStream().Publish(ctx, SubjectPrefix+"thing.changed", []byte("junk")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ids
}

// collector records what a handler saw and stops the consumer once it has
// every id.
type collector struct {
	mu     sync.Mutex
	seen   []string
	done   chan struct{}
	want   int
	failed map[string]bool
}

func (c *collector) add(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, ids...)
	if len(c.seen) == c.want {
		close(c.done)
	}
}

func (c *collector) wait(t *testing.T) []string {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("handled %d events of %d: %v", len(c.seen), c.want, c.seen)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

func TestConsumeRetriesAFailedEventAndSkipsWhatIsNotAnEvent(t *testing.T) {
	t.Parallel()
	b := openBus(t, t.TempDir())
	defer b.Close()
	ids := publish(t, b, 20)
	c := &collector{done: make(chan struct{}), want: len(ids), failed: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Consume(ctx, b, Subscription{Durable: "test", Types: []string{"thing.changed"}, Backoff: 50 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)}, func(_ context.Context, e Event) error {
		if e.ID == "evt_005" && !c.failed[e.ID] {
			c.failed[e.ID] = true // handlers run one at a time
			return errors.New("not yet")
		}
		c.add(e.ID)
		return nil
	})
	got := c.wait(t)
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("handled %v, want each of %v once", got, ids)
	}
	// Everything handled was acknowledged: nothing waits or comes again.
	cons, err := b.JetStream().Consumer(context.Background(), Stream, "test")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer left %d unacknowledged, %d pending", info.NumAckPending, info.NumPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConsumeBatchesKeepsStreamOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := openBus(t, dir)
	defer b.Close()
	ids := publish(t, b, 30)
	c := &collector{done: make(chan struct{}), want: len(ids)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var batches int
	go ConsumeBatches(ctx, b, Subscription{Durable: "batches", Batch: 8, Log: slog.New(slog.DiscardHandler)},
		func(_ context.Context, events []Event) error {
			if len(events) > 8 {
				t.Errorf("a batch of %d events, want at most 8", len(events))
			}
			batches++
			for _, e := range events {
				c.add(e.ID)
			}
			return nil
		})
	got := c.wait(t)
	if !slices.Equal(got, ids) {
		t.Fatalf("handled %v, want %v in stream order", got, ids)
	}
	if batches < 4 {
		t.Fatalf("%d batches for %d events of at most 8", batches, len(ids))
	}
}

func TestConsumeBatchesInOrderRetriesAFailedBatchInPlace(t *testing.T) {
	t.Parallel()
	b := openBus(t, t.TempDir())
	defer b.Close()
	ids := publish(t, b, 30)
	c := &collector{done: make(chan struct{}), want: len(ids)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failures := 0
	go ConsumeBatches(ctx, b, Subscription{Durable: "inorder", Batch: 8, InOrder: true, Backoff: 20 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)},
		func(_ context.Context, events []Event) error {
			// The batch holding evt_010 fails twice; with InOrder nothing
			// after it may be handled before it is.
			if slices.ContainsFunc(events, func(e Event) bool { return e.ID == "evt_010" }) && failures < 2 {
				failures++
				return errors.New("not yet")
			}
			for _, e := range events {
				c.add(e.ID)
			}
			return nil
		})
	got := c.wait(t)
	if !slices.Equal(got, ids) {
		t.Fatalf("handled %v, want %v in stream order, each once", got, ids)
	}
	if failures != 2 {
		t.Fatalf("the failing batch failed %d times, want 2", failures)
	}
}

// A batch retried in place holds up every later event, so its delay stops
// growing at 30 s (and within half the ack wait), where a redelivered
// event's may grow to 10 minutes.
func TestInOrderRetryDelayIsCapped(t *testing.T) {
	t.Parallel()
	analytics := Subscription{Backoff: time.Second, AckWait: 5 * time.Minute, InOrder: true}
	for _, c := range []struct {
		sub     Subscription
		attempt int
		want    time.Duration
	}{
		{analytics, 1, time.Second},
		{analytics, 29, 29 * time.Second},
		{analytics, 31, 30 * time.Second},
		{analytics, 600, 30 * time.Second}, // 10 minutes before
		{Subscription{InOrder: true}, 2, 20 * time.Second},
		{Subscription{InOrder: true}, 100, 30 * time.Second},
		{Subscription{Backoff: time.Second, AckWait: 20 * time.Second, InOrder: true}, 50, 10 * time.Second},
	} {
		if got := c.sub.inOrderDelay(c.attempt); got != c.want {
			t.Errorf("backoff %v, ack wait %v: attempt %d waits %v, want %v", c.sub.Backoff, c.sub.AckWait, c.attempt, got, c.want)
		}
	}
	if got := analytics.retryDelay(600); got != 10*time.Minute {
		t.Errorf("a redelivery's delay is %v after 600 deliveries, want the 10-minute cap kept", got)
	}
}
