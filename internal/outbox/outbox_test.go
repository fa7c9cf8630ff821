package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// thingChanged is the payload of the event type these tests record.
type thingChanged struct {
	N int `json:"n"`
}

var thingChangedEvent = Define[thingChanged]("thing.changed", 1, "thing", "A thing changed (tests only).")

func openBus(t testing.TB, dir string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Open(context.Background(), natsbus.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func record(t testing.TB, d *db.DB, n int, aggregates int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := thingChangedEvent.Record(ctx, tx, "ten_1", fmt.Sprintf("thing_%d", i%aggregates), time.Time{}, thingChanged{N: i})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// streamEvents reads every message in the events stream: ids in stream
// order and the payload sequence numbers per aggregate.
func streamEvents(t *testing.T, b *natsbus.Bus) (ids []string, perAggregate map[string][]int) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perAggregate = map[string][]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
		var n int
		_, _ = fmt.Sscanf(string(m.Data), `{"n":%d}`, &n)
		if v := m.Header.Get("Abacus-Event-Version"); v != "1" {
			t.Fatalf("event %d published with version header %q, want 1", seq, v)
		}
		agg := m.Header.Get("Abacus-Aggregate")
		perAggregate[agg] = append(perAggregate[agg], n)
	}
	return ids, perAggregate
}

func drain(t *testing.T, r *Relay) {
	t.Helper()
	ctx := context.Background()
	if err := Provision(ctx, r.bus); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		n, err := r.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("relay did not drain")
}

func assertExactlyOnceInOrder(t *testing.T, b *natsbus.Bus, want int) {
	t.Helper()
	ids, perAgg := streamEvents(t, b)
	if len(ids) != want {
		t.Fatalf("stream has %d events, want %d", len(ids), want)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("event %s published twice", id)
		}
		seen[id] = true
	}
	for agg, ns := range perAgg {
		for i := 1; i < len(ns); i++ {
			if ns[i] <= ns[i-1] {
				t.Fatalf("aggregate %s out of order: %v", agg, ns)
			}
		}
	}
}

func TestRelayPublishesEveryEventOnceInOrder(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := openBus(t, t.TempDir())
		defer b.Close()
		record(t, d, 60, 4)
		r := NewRelay(d, b, RelayConfig{BatchSize: 7}, slog.New(slog.DiscardHandler), nil)
		drain(t, r)
		assertExactlyOnceInOrder(t, b, 60)
		if n, _ := Pending(context.Background(), d); n != 0 {
			t.Fatalf("%d events still pending", n)
		}
	})
}

func TestRolledBackEventIsNeverPublished(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := thingChangedEvent.Record(ctx, tx, "t", "1", time.Time{}, thingChanged{N: 1}); err != nil {
				t.Fatal(err)
			}
			return fmt.Errorf("abort")
		})
		if n, _ := Pending(ctx, d); n != 0 {
			t.Fatalf("rolled-back event is pending (%d)", n)
		}
	})
}

// The crash tests run a child process (this test binary) that records
// events and then kills itself with SIGKILL at a chosen point; the parent
// then opens the same database and NATS store, as a restarted process
// would, and checks that every event reaches the stream exactly once.
func TestRelayCrash(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		for _, mode := range []string{"after-commit", "after-publish"} {
			t.Run(string(engine)+"/"+mode, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				url := ""
				if engine == db.Postgres {
					url = dbtest.NewSchema(t)
				}
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
				cmd.Env = append(os.Environ(), "OUTBOX_CHILD="+mode, "OUTBOX_DIR="+dir, "OUTBOX_DB_URL="+url)
				out, err := cmd.CombinedOutput()
				ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("child did not die by SIGKILL (err %v):\n%s", err, out)
				}
				d, err := db.Open(context.Background(), db.Options{URL: url, SQLitePath: filepath.Join(dir, "abacus.db")})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				b := openBus(t, filepath.Join(dir, "nats"))
				defer b.Close()
				pending, _ := Pending(context.Background(), d)
				if pending == 0 {
					t.Fatal("nothing pending after the crash: the child did not crash where intended")
				}
				drain(t, NewRelay(d, b, RelayConfig{}, slog.New(slog.DiscardHandler), nil))
				assertExactlyOnceInOrder(t, b, 20)
			})
		}
	}
}

func TestCrashChild(t *testing.T) {
	mode := os.Getenv("OUTBOX_CHILD")
	if mode == "" {
		t.Skip("runs only as the child of TestRelayCrash")
	}
	dir, url := os.Getenv("OUTBOX_DIR"), os.Getenv("OUTBOX_DB_URL")
	ctx := context.Background()
	d, err := db.Open(ctx, db.Options{URL: url, SQLitePath: filepath.Join(dir, "abacus.db")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := openBus(t, filepath.Join(dir, "nats"))
	record(t, d, 20, 3)
	kill := func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	if mode == "after-commit" {
		kill() // committed, never published
	}
	r := NewRelay(d, b, RelayConfig{BatchSize: 100}, slog.New(slog.DiscardHandler), nil)
	published := 0
	r.afterPublish = func(Event) {
		published++
		if published == 5 {
			kill() // five acked by the server, none marked published
		}
	}
	drain(t, r)
	t.Fatal("child survived: " + strconv.Itoa(published))
}
