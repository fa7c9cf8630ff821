package cluster_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/backup"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/cluster"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// startSingle starts `abacus serve` in the embedded mode (SQLite, the
// in-process NATS server) on dataDir.
func startSingle(t *testing.T, name, dataDir, key string) *cluster.Proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &cluster.Proc{Name: name, Kind: "abacus", HTTP: addr, Log: dataDir + ".log", Args: []string{abacusBin, "serve"},
		Env: []string{"ABACUS_DATA_DIR=" + dataDir, "ABACUS_HTTP_ADDR=" + addr, "ABACUS_BOOTSTRAP_API_KEY=" + key,
			"ABACUS_LOG_LEVEL=warn", "ABACUS_GC_HEAP_FLOOR_MB=16", "ABACUS_BILLING_POLL_INTERVAL=300ms"}}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("---- %s log tail:\n%s", name, p.Tail(2000))
		}
	})
	if err := p.WaitReady(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBackupRestoreWhileServing takes `abacus backup` of a serving
// embedded instance under ingestion, restores it with `abacus restore`
// into an empty data dir and starts a server there: every invoice is
// there, and the usage events are an exact prefix of those sent (one
// connection sends them in order) at least as long as what was
// acknowledged before the backup began — none lost, none counted twice.
func TestBackupRestoreWhileServing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	key := "abk_backup" + randomHex() + randomHex()
	src := startSingle(t, "source", filepath.Join(dir, "a"), key)
	api := client.New("http://"+src.HTTP, key, &http.Client{Timeout: 10 * time.Second})
	typ := "bk_" + randomHex()
	for _, m := range []client.Meter{
		{Slug: typ + "_sum", EventType: typ, Aggregation: "SUM", ValueProperty: "$.value"},
		{Slug: typ + "_count", EventType: typ, Aggregation: "COUNT"},
	} {
		if _, err := api.CreateMeter(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	subs := seedBilling(t, ctx, api, "bk", 4, 2)
	var invs []invoice
	waitFor(t, time.Minute, "the backdated periods to be invoiced", func() bool {
		var err error
		invs, err = invoices(ctx, api)
		return err == nil && checkInvoices(invs, subs, 3) == nil
	})
	events := int64(15_000)
	var acked atomic.Int64
	start := time.Now()
	sent := make(chan error, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{Events: events, Rate: 3000, Conns: 1, BatchSize: 50, Progress: &acked},
			loadgen.NewGen(typ, typ, "backup-test", 10, 0), loadgen.HTTPSender(api))
		if err == nil && res.Failed != nil {
			err = fmt.Errorf("%v", res.Failed)
		}
		sent <- err
	}()
	waitFor(t, time.Minute, "ingestion to be under way", func() bool { return acked.Load() >= events/4 })
	archive := filepath.Join(dir, "backup.tar")
	ackedAt := sampleAcks(ctx, &acked)
	before := acked.Load()
	backup := exec.Command(abacusBin, "backup", "--data-dir", filepath.Join(dir, "a"), "--out", archive)
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("abacus backup: %v\n%s", err, out)
	}
	during := acked.Load()
	if during == before || during == events {
		t.Fatalf("the backup was not taken under ingestion: %d acknowledged before, %d after, of %d", before, during, events)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// Every event acknowledged before the streams were snapshotted (T2 in
	// internal/backup's doc) must come back; those acknowledged after the
	// database copy (T1) exist only in the stream snapshot.
	m := readManifest(t, archive)
	must, afterDB := ackedAt(m.StreamsAt), ackedAt(m.DatabaseAt)
	if err := src.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(dir, "b")
	if out, err := exec.Command(abacusBin, "restore", "--data-dir", restored, archive).CombinedOutput(); err != nil {
		t.Fatalf("abacus restore: %v\n%s", err, out)
	}
	dst := startSingle(t, "restored", restored, key)
	api = client.New("http://"+dst.HTTP, key, &http.Client{Timeout: 10 * time.Second})
	after, err := invoices(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkInvoices(after, subs, 3); err != nil || len(after) != len(invs) {
		t.Fatalf("after the restore, %d invoices (%d before): %v", len(after), len(invs), err)
	}
	// The restored meters settle on a prefix of the events sent.
	q := loadgen.Window(start, 0)
	q.To = loadgen.Window(time.Now(), 0).To
	var sum, count string
	settled := waitFor(t, time.Minute, "the restored meters to settle on a prefix of the events", func() bool {
		s, c, err := loadgen.Totals(ctx, api, typ+"_sum", typ+"_count", q)
		if err != nil {
			return false
		}
		sum, count = s.String(), c.String()
		n := c.IntPart()
		return n >= must && s.Equal(loadgen.Decimal(loadgen.SumCents(0, n)))
	})
	t.Logf("backup taken between %d and %d acknowledged events (%d at the database copy, %d at the stream snapshots); restored COUNT %s, SUM %s (settled after %s); %d invoices",
		before, during, afterDB, must, count, sum, settled.Round(time.Millisecond), len(after))
	if c, _ := loadgen.Total(ctx, api, typ+"_count", q); c.IntPart() > during {
		t.Fatalf("restored COUNT %s exceeds the %d events acknowledged when the backup ended", c, during)
	}
	_ = os.Remove(archive)
}

// sampleAcks records the acknowledged count every millisecond until ctx
// ends; the function returned tells how many were acknowledged before t.
func sampleAcks(ctx context.Context, acked *atomic.Int64) func(t time.Time) int64 {
	type sample struct {
		at time.Time
		n  int64
	}
	var mu sync.Mutex
	var samples []sample
	go func() {
		for ctx.Err() == nil {
			mu.Lock()
			samples = append(samples, sample{time.Now(), acked.Load()})
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return func(t time.Time) int64 {
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for _, s := range samples {
			if !s.at.Before(t) {
				break
			}
			n = s.n
		}
		return n
	}
}

func readManifest(t *testing.T, archive string) backup.Manifest {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
