package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

var ingestNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newTestIngester(t *testing.T, cfg IngestConfig) (*Ingester, *natsbus.Bus, context.CancelFunc, chan struct{}) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	bus, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	cfg.MaxLag = 1 << 30
	in, err := NewIngester(context.Background(), bus, cfg, abacus.NewFakeClock(ingestNow), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = in.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return in, bus, cancel, stopped
}

func testEvents(req, n int) []metering.Event {
	evs := make([]metering.Event, n)
	for i := range evs {
		evs[i] = metering.Event{TenantID: "t1", ID: fmt.Sprintf("e%d-%d", req, i), Source: "s", Type: "x",
			Subject: fmt.Sprintf("cus_%d", (req+i)%7), Time: ingestNow, Data: []byte(`{}`)}
	}
	return evs
}

// busEvents reads every message of the usage stream and counts events by id.
func busEvents(t *testing.T, bus *natsbus.Bus) (map[string]int, int) {
	t.Helper()
	ctx := context.Background()
	s, err := bus.JetStream().Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := splitFrames(m.Data, func(batch []byte) error {
			evs, err := metering.DecodeBatch(batch)
			for _, e := range evs {
				if want := Subject(Partition(e.TenantID, e.Subject, 4)); m.Subject != want {
					t.Errorf("event %s on %s, want %s", e.ID, m.Subject, want)
				}
				seen[e.ID]++
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return seen, int(info.State.Msgs)
}

// Concurrent requests, single events and batches spanning partitions,
// with one publish in flight per partition and tiny messages (so full
// messages queue behind the in-flight one): every Submit that returns nil
// has all its events on the bus, each exactly once, on its partition.
func TestIngestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	in, bus, _, _ := newTestIngester(t, IngestConfig{Partitions: 4, MaxInflight: 1, MaxBatchEvents: 5})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for r := 0; r < 200; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1
			if r%10 == 0 {
				n = 12 // several partitions, split into several messages
			}
			errs <- in.Submit(context.Background(), testEvents(r, n))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen, msgs := busEvents(t, bus)
	want := 180 + 20*12
	if len(seen) != want {
		t.Fatalf("%d distinct events on the bus, want %d", len(seen), want)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %s on the bus %d times", id, c)
		}
	}
	if msgs >= want {
		t.Errorf("%d bus messages for %d events: nothing was coalesced", msgs, want)
	}
}

// Stopping the role publishes what is queued and waits for the acks;
// afterwards Submit answers unavailable instead of blocking.
func TestIngestShutdown(t *testing.T) {
	t.Parallel()
	in, bus, cancel, stopped := newTestIngester(t, IngestConfig{Partitions: 4, Linger: time.Hour})
	var wg sync.WaitGroup
	var failed sync.Map
	for r := 0; r < 50; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Submit(context.Background(), testEvents(r, 1)); err != nil {
				failed.Store(r, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-stopped
	wg.Wait()
	seen, _ := busEvents(t, bus)
	for r := 0; r < 50; r++ {
		_, f := failed.Load(r)
		if on := seen[fmt.Sprintf("e%d-0", r)]; !f && on != 1 {
			t.Errorf("request %d acknowledged but its event is on the bus %d times", r, on)
		}
	}
	err := in.Submit(context.Background(), testEvents(99, 1))
	var ae *abacus.Error
	if !errors.As(err, &ae) || ae.Kind != abacus.KindUnavailable {
		t.Fatalf("Submit after shutdown: %v, want unavailable", err)
	}
}

// When JetStream refuses the publish (no stream), the request fails with
// a retryable unavailable error, not a 2xx.
func TestIngestPublishFailure(t *testing.T) {
	t.Parallel()
	in, bus, _, _ := newTestIngester(t, IngestConfig{Partitions: 4})
	if err := in.Submit(context.Background(), testEvents(0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := bus.JetStream().DeleteStream(context.Background(), Stream); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := in.Submit(ctx, testEvents(1, 3))
	var ae *abacus.Error
	if !errors.As(err, &ae) || ae.Kind != abacus.KindUnavailable || ae.RetryAfter == 0 {
		t.Fatalf("Submit without a stream: %v, want unavailable with Retry-After", err)
	}
	if _, err := bus.JetStream().Stream(context.Background(), Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream: %v", err)
	}
}
