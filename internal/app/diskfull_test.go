package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// smallDataDir mounts a 32 MiB tmpfs for a data dir, or skips the test
// saying why (it needs root, as in CI).
func smallDataDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs as the data dir needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs at %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a ballast file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func eventBatch(from, n int, at time.Time) string {
	evs := make([]string, n)
	for i := range n {
		evs[i] = fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"disk","type":"req","subject":"c1","time":%q}`,
			from+i, at.Format(time.RFC3339Nano))
	}
	return "[" + strings.Join(evs, ",") + "]"
}

// postEvents posts a batch of events as a raw body.
func (a *testApp) postEvents(body string) response {
	a.t.Helper()
	return a.do("POST", "/api/v1/events", a.key, json.RawMessage(body), "Content-Type", "application/cloudevents-batch+json")
}

// Issue 12: after a full data dir was freed, every POST /events stayed at
// 503 until a restart, while /readyz said ready. Now /readyz says why it
// is not ready while writes fail, and ingestion recovers on its own once
// space returns, without losing or doubling an acknowledged event.
func TestIngestionRecoversAfterDiskFull(t *testing.T) {
	dir := smallDataDir(t)
	a := start(t, db.SQLite, func(c *config.Config) { c.DataDir = dir })
	a.post("/api/v1/meters", map[string]any{"slug": "reqs", "eventType": "req", "aggregation": "COUNT"})
	at := time.Now().UTC().Truncate(time.Second)
	const per = 50
	if r := a.postEvents(eventBatch(0, per, at)); r.status != http.StatusNoContent {
		t.Fatalf("before the disk is full: %d %s", r.status, r.body)
	}
	acked := per // events e0 … e(acked-1) were answered 204
	waitFor(t, func() bool {
		return meterTotal(t, a, "reqs", at.Add(-time.Hour), at.Add(time.Hour)).Equal(decimal.NewFromInt(int64(acked)))
	})

	ballast := filepath.Join(dir, "ballast")
	fill(t, ballast)
	var refused response
	for i := 0; i < 200; i++ {
		r := a.postEvents(eventBatch(acked, per, at))
		if r.status == http.StatusNoContent {
			acked += per // it still fitted: these are durable and must be counted once
			continue
		}
		refused = r
		break
	}
	if refused.status != http.StatusServiceUnavailable {
		t.Fatalf("with the disk full: want 503, got %d %s (after %d events accepted)", refused.status, refused.body, acked)
	}
	t.Logf("with the disk full: %d %s", refused.status, refused.body)
	ready := a.do("GET", "/readyz", "", nil)
	if ready.status != http.StatusServiceUnavailable || !strings.Contains(string(ready.body), "space") {
		t.Fatalf("/readyz with the disk full: want 503 naming the lack of space, got %d %s", ready.status, ready.body)
	}
	t.Logf("/readyz with the disk full: %s", ready.body)

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for {
		r := a.postEvents(eventBatch(acked, per, at)) // the client's retry, same ids
		if r.status == http.StatusNoContent {
			acked += per
			break
		}
		if time.Since(freed) > 30*time.Second {
			t.Fatalf("ingestion did not recover within 30s of freeing space: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond) // real disk and server, no clock to fake
	}
	t.Logf("ingestion recovered %s after freeing space", time.Since(freed).Round(time.Millisecond))
	waitFor(t, func() bool { return a.do("GET", "/readyz", "", nil).status == http.StatusOK })
	if r := a.postEvents(eventBatch(acked, per, at)); r.status != http.StatusNoContent {
		t.Fatalf("after recovery: %d %s", r.status, r.body)
	}
	acked += per
	// Every acknowledged event is metered once: none lost, none doubled.
	want := decimal.NewFromInt(int64(acked))
	got := meterTotal(t, a, "reqs", at.Add(-time.Hour), at.Add(time.Hour))
	for deadline := time.Now().Add(30 * time.Second); got.LessThan(want) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the meter role catching up for real
		got = meterTotal(t, a, "reqs", at.Add(-time.Hour), at.Add(time.Hour))
	}
	t.Logf("metered %s of %s acknowledged events %s after freeing space", got, want, time.Since(freed).Round(time.Millisecond))
	if !got.Equal(want) {
		logUsagePipeline(t, a)
		t.Fatalf("metered %s events, want every acknowledged one once: %s", got, want)
	}
}

// logUsagePipeline logs what the usage stream, its consumers and the meter
// offsets hold, so that a failure (seen twice in CI, never reproduced
// alone) says where the events stopped.
func logUsagePipeline(t *testing.T, a *testApp) {
	ctx := context.Background()
	js := a.Bus.JetStream()
	st, err := js.Stream(ctx, usage.Stream)
	if err != nil {
		t.Logf("stream %s: %v", usage.Stream, err)
		return
	}
	state := st.CachedInfo().State
	t.Logf("stream %s: first %d, last %d, %d messages, created %s", usage.Stream, state.FirstSeq, state.LastSeq, state.Msgs, st.CachedInfo().Created)
	for seq := state.FirstSeq; seq <= state.LastSeq && seq > 0; seq++ {
		if m, err := st.GetMsg(ctx, seq); err != nil {
			t.Logf("  message %d: %v", seq, err)
		} else {
			t.Logf("  message %d: %s at %d, %d bytes, id %s", seq, m.Subject, m.Time.UnixNano(), len(m.Data), m.Header.Get("Nats-Msg-Id"))
		}
	}
	for cons := range st.ListConsumers(ctx).Info() {
		t.Logf("consumer %s: delivered %d, ack floor %d, pending %d, ack pending %d, start %v/%d",
			cons.Name, cons.Delivered.Stream, cons.AckFloor.Stream, cons.NumPending, cons.NumAckPending, cons.Config.DeliverPolicy, cons.Config.OptStartSeq)
	}
	rows, err := a.DB.QueryContext(ctx, `SELECT partition, stream_seq, stream_time FROM metering_offsets ORDER BY partition`)
	if err != nil {
		t.Logf("offsets: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var p, seq, at int64
		if err := rows.Scan(&p, &seq, &at); err == nil {
			t.Logf("offset of partition %d: %d at %d", p, seq, at)
		}
	}
}
