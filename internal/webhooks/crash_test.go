package webhooks

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// A dispatcher abandoned after the POST and before recording it (as a
// process dying there would) leaves the message leased; after the lease a
// restarted dispatcher sends it again with the same webhook-id.
func TestAbandonedDeliveryIsSentAgainWithTheSameID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, nil)
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 3)); err != nil {
			t.Fatal(err)
		}
		dying := s.NewDispatcher()
		dying.beforeRecord = func(result) bool { return false }
		if n := len(step(t, dying)); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
		restarted := s.NewDispatcher()
		if n := len(step(t, restarted)); n != 0 {
			t.Fatalf("%d attempts while the lease holds", n)
		}
		clock.Advance(s.cfg.Lease)
		if n := len(step(t, restarted)); n != 3 {
			t.Fatalf("%d attempts after the lease, want 3", n)
		}
		assertDeliveredTwiceWithOneID(t, s, rcv, ep.ID)
	})
}

func assertDeliveredTwiceWithOneID(t *testing.T, s *Service, rcv *receiver, endpoint string) {
	t.Helper()
	for _, m := range messages(t, s, "ten_a", endpoint) {
		if m.Status != StatusDelivered {
			t.Fatalf("message %s is %s after the restart", m.ID, m.Status)
		}
		rcv.mu.Lock()
		n := rcv.perID[m.ID]
		rcv.mu.Unlock()
		if n < 1 {
			t.Fatalf("message %s never reached the receiver under its webhook-id", m.ID)
		}
	}
}

// kill -9 during delivery: a child process (this test binary) delivers;
// the receiver kills it with SIGKILL on the first request, before
// answering. A new dispatcher on the same database then delivers every
// message, the interrupted ones again under the same webhook-id.
func TestKillDuringDelivery(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			url := ""
			if engine == db.Postgres {
				url = dbtest.NewSchema(t)
			}
			ctx := context.Background()
			d, err := db.Open(ctx, db.Options{URL: url, SQLitePath: filepath.Join(dir, "abacus.db")})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			var child *exec.Cmd
			killed := make(chan struct{})
			rcv := newReceiver(t, func(string, int) int {
				once.Do(func() {
					_ = child.Process.Signal(syscall.SIGKILL)
					close(killed)
				})
				return http.StatusOK
			})
			s := newService(t, d, abacus.SystemClock{}, privateOK)
			ep := createEndpoint(t, s, "ten_a", rcv.URL)
			if err := s.Ingest(ctx, events("ten_a", time.Now(), 20)); err != nil {
				t.Fatal(err)
			}
			child = exec.Command(os.Args[0], "-test.run=^TestKillChild$")
			child.Env = append(os.Environ(), "WEBHOOKS_CHILD=1", "WEBHOOKS_DIR="+dir, "WEBHOOKS_DB_URL="+url,
				"WEBHOOKS_KEY="+testKeyHex())
			out, err := child.CombinedOutput()
			ws, ok := child.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL (err %v):\n%s", err, out)
			}
			<-killed
			before := len(rcv.deliveries())
			clock := abacus.NewFakeClock(time.Now().Add(s.cfg.Lease + time.Second))
			restarted := newService(t, d, clock, privateOK).NewDispatcher()
			for range 10 {
				step(t, restarted)
			}
			if len(rcv.deliveries()) <= before {
				t.Fatal("nothing was sent after the restart")
			}
			assertDeliveredTwiceWithOneID(t, s, rcv, ep.ID)
			first := rcv.deliveries()[0].ID
			rcv.mu.Lock()
			n := rcv.perID[first]
			rcv.mu.Unlock()
			if n < 2 {
				t.Fatalf("the message interrupted by the kill (%s) was received %d times, want again after the restart", first, n)
			}
		})
	}
}

// TestKillChild is the child of TestKillDuringDelivery: it dispatches
// until killed.
func TestKillChild(t *testing.T) {
	if os.Getenv("WEBHOOKS_CHILD") == "" {
		t.Skip("runs only as the child of TestKillDuringDelivery")
	}
	ctx := context.Background()
	d, err := db.Open(ctx, db.Options{URL: os.Getenv("WEBHOOKS_DB_URL"), SQLitePath: filepath.Join(os.Getenv("WEBHOOKS_DIR"), "abacus.db")})
	if err != nil {
		t.Fatal(err)
	}
	testKey = fromHex(os.Getenv("WEBHOOKS_KEY"))
	s := newService(t, d, abacus.SystemClock{}, privateOK)
	_ = s.NewDispatcher().Run(ctx)
	t.Fatal("the child was not killed")
}
