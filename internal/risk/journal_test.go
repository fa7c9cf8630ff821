package risk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// journalService is a risk service with its journal in dir whose applier
// stores every interval (and never for the count of events waiting).
func journalService(t *testing.T, d *db.DB, dir string, interval time.Duration, tune ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{HashKey: bytes.Repeat([]byte{9}, 32), JournalDir: dir, ApplyInterval: interval, ApplyBatch: 1 << 20}
	for _, f := range tune {
		f(&cfg)
	}
	svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// runningJournal starts a journal service of its own on a new SQLite
// database, stopped when t ends, and returns it with a context of tenant.
func runningJournal(t *testing.T, tenant string, interval time.Duration, tune ...func(*Config)) (*Service, *db.DB, context.Context) {
	t.Helper()
	d := dbtest.Open(t, db.SQLite)
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	svc := journalService(t, d, filepath.Join(t.TempDir(), "journal"), interval, tune...)
	if err := svc.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc, d, ctx
}

func storedRows(t *testing.T, d *db.DB) (events, questions int) {
	t.Helper()
	ctx := context.Background()
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM risk_events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM risk_decisions`).Scan(&questions); err != nil {
		t.Fatal(err)
	}
	return events, questions
}

// Events answered from the journal and not yet stored in SQLite when the
// process dies are stored by the next start, exactly once, with their
// review cases' hook run; the counters rebuilt from them count them.
func TestJournalReplaysWhatWasAnswered(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	dir := filepath.Join(t.TempDir(), "journal")
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_j", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})

	a := journalService(t, d, dir, time.Hour)
	if err := a.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateCounter(ctx, CounterInput{Name: "orders", Key: "customer_id", Op: OpCount, Window: "1h"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		ds, _, err := a.Decide(ctx, []byte(`{"type":"order","customer_id":"c1","amount":"5.00","currency":"EUR"}`), true)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ds[0].ID)
	}
	q, _, err := a.Decide(ctx, []byte(`{"type":"order","customer_id":"c1","amount":"5.00","currency":"EUR"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, q[0].ID)
	if ev, qs := storedRows(t, d); ev != 0 || qs != 0 {
		t.Fatalf("before the applier's interval: %d events, %d questions in SQLite; want them only in the journal", ev, qs)
	}
	// a is abandoned as a killed process would be: it never applies.

	var hooked []string
	b := journalService(t, d, dir, time.Hour)
	b.OnDecided(func(_ context.Context, _ *db.Tx, _ string, ds []*Decision) error {
		for _, dd := range ds {
			if dd.StoredEvent() == nil || dd.StoredEvent().CustomerID != "c1" {
				t.Errorf("hook got decision %s without its event", dd.ID)
			}
			hooked = append(hooked, dd.ID)
		}
		return nil
	})
	if err := b.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ev, qs := storedRows(t, d); ev != 3 || qs != 1 {
		t.Fatalf("after the replay: %d events, %d questions; want 3 and 1", ev, qs)
	}
	if len(hooked) != 3 {
		t.Errorf("the decision hook saw %d replayed decisions, want 3", len(hooked))
	}
	for _, id := range ids {
		if _, err := b.GetDecision(ctx, id); err != nil {
			t.Errorf("GET %s after the replay: %v", id, err)
		}
	}
	ds, _, err := b.Decide(ctx, []byte(`{"type":"order","customer_id":"c1","amount":"5.00","currency":"EUR"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := ds[0].Features.Counters["orders"]; got != 4 {
		t.Errorf("the counter after the replay counts %v orders, want 4 (3 replayed and this one)", got)
	}
	// GET waits for the applier: the decision just answered is readable.
	if _, err := b.GetDecision(ctx, ds[0].ID); err != nil {
		t.Fatalf("GET right after the answer: %v", err)
	}
	b.Stop()
	waitStopped(t, b)

	c := journalService(t, d, dir, time.Hour)
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if ev, qs := storedRows(t, d); ev != 4 || qs != 1 {
		t.Fatalf("after a clean stop and start: %d events, %d questions; want 4 and 1 (nothing twice)", ev, qs)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Errorf("the journal holds %d segments after a start, want the new one alone", len(names))
	}
}

func waitStopped(t *testing.T, s *Service) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the service did not stop")
	}
}

// A request with commit hooks (an Idempotency-Key claim) is answered only
// once its events are in SQLite, its hooks in the same transaction; one
// whose hook fails stores nothing, and the journal's batches before it
// are stored all the same.
func TestJournalRequestWithCommitHooksWaitsForSQLite(t *testing.T) {
	svc, d, ctx := runningJournal(t, "ten_h", time.Hour)
	body := []byte(`{"type":"login","customer_id":"c2"}`)
	if _, _, err := svc.Decide(ctx, body, true); err != nil { // journal only
		t.Fatal(err)
	}
	refuse := errors.New("claim taken over")
	bad := db.WithCommitHook(ctx, func(context.Context, *db.Tx) error { return refuse })
	if _, _, err := svc.Decide(bad, body, true); !errors.Is(err, refuse) {
		t.Fatalf("a failing commit hook: %v, want it", err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, _ := storedRows(t, d); ev != 1 {
		t.Fatalf("%d events stored, want the journal's one alone", ev)
	}
	marked := 0
	good := db.WithCommitHook(ctx, func(ctx context.Context, tx *db.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM risk_events`).Scan(&n); err != nil {
			return err
		}
		marked = n
		return nil
	})
	if _, _, err := svc.Decide(good, body, true); err != nil {
		t.Fatal(err)
	}
	if ev, _ := storedRows(t, d); ev != 2 || marked != 2 {
		t.Fatalf("answered with %d events stored (the hook saw %d); want 2, the hook in their transaction", ev, marked)
	}
}

// A frame torn by a crash of the machine ends the replay of its segment;
// new batches follow the last sequence number logged or applied, so a
// database restored ahead of an empty journal never has new batches
// taken for applied ones.
func TestJournalTornTailAndSequence(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.start(0); err != nil {
		t.Fatal(err)
	}
	j.segmentBytes = 1500 // a few batches per segment
	now := time.Now().UTC().Truncate(time.Microsecond)
	item := func(i int) *pending {
		ev := &Event{ID: abacus.NewID("rev"), Type: "order", Time: now, CustomerID: "c"}
		evJSON, _ := json.Marshal(ev)
		return &pending{tenant: "ten_t", ev: ev, evJSON: evJSON, d: &Decision{ID: decisionIDOf(ev.ID), Decision: Allow},
			fJSON: []byte(`{}`), dJSON: bytes.Repeat([]byte("d"), 200+i)}
	}
	for i := range 12 {
		if _, err := j.append(now, []*pending{item(i), item(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(j.segments) < 3 {
		t.Fatalf("%d segments, want the batches spread over several", len(j.segments))
	}
	j.dropApplied(4)
	if j.segments[0] > 5 {
		t.Fatalf("segments %v after applying 4: one holding batch 5 was dropped", j.segments)
	}
	j.close()
	last := filepath.Join(dir, j.path(j.segments[len(j.segments)-1])[len(dir)+1:])
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-7); err != nil { // the last frame torn
		t.Fatal(err)
	}

	j2, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	lastSeq, err := j2.replay(4, func(b journalBatch) error {
		if len(b.items) != 2 || b.items[0].ev == nil || b.items[0].d.EventID != b.items[0].ev.ID || !b.received.Equal(now) {
			t.Errorf("batch %d decoded as %+v", b.seq, b)
		}
		seqs = append(seqs, b.seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lastSeq != 11 || len(seqs) != 7 || seqs[0] != 5 || seqs[6] != 11 {
		t.Fatalf("replayed %v (last %d); want 5…11, the torn 12th dropped", seqs, lastSeq)
	}

	j3, _ := openJournal(t.TempDir())
	if got, _ := j3.replay(50, func(journalBatch) error { return nil }); got != 50 {
		t.Fatalf("an empty journal after a restore: last %d, want the database's 50", got)
	}
	if err := j3.start(50); err != nil {
		t.Fatal(err)
	}
	if b, err := j3.append(now, []*pending{item(0)}); err != nil || b.seq != 51 {
		t.Fatalf("the first new batch is %d (%v), want 51", b.seq, err)
	}
	j3.close()
}

// The applier stores a batch within ApplyInterval by itself, with no
// read waiting for it and no more events coming.
func TestJournalAppliesWithinTheInterval(t *testing.T) {
	svc, d, ctx := runningJournal(t, "ten_i", 30*time.Millisecond)
	for round := range 3 {
		if _, _, err := svc.Decide(ctx, []byte(`{"type":"login","customer_id":"c3"}`), true); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if ev, _ := storedRows(t, d); ev == round+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the event is not in SQLite 5 s after its answer (interval 30ms)", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the applier idle again
	}
}

// Concurrent requests lead the journal's group commit in turn: every
// one is answered, and each answered event is stored once.
func TestJournalConcurrentRequestsLeadInTurn(t *testing.T) {
	svc, d, ctx := runningJournal(t, "ten_c", 5*time.Millisecond)
	const senders, each = 16, 100
	errs := make(chan error, senders)
	for range senders {
		go func() {
			for range each {
				if _, _, err := svc.Decide(ctx, []byte(`{"type":"login","customer_id":"c4"}`), true); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, _ := storedRows(t, d); ev != senders*each {
		t.Fatalf("%d events stored, want %d", ev, senders*each)
	}
}

// While the applier is ApplyBacklog events behind, a request with events
// waits BacklogWait and is refused (503 risk_backlog), nothing of it
// written; a read's barrier still gets in and lets the applier catch up.
func TestJournalRefusesEventsPastTheBacklog(t *testing.T) {
	svc, d, ctx := runningJournal(t, "ten_b", time.Hour, func(c *Config) { // stores only when asked
		c.ApplyBacklog, c.BacklogWait = 3, 50*time.Millisecond
	})
	body := []byte(`{"type":"login","customer_id":"c3"}`)
	for range 3 {
		if _, _, err := svc.Decide(ctx, body, true); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, _, err := svc.Decide(ctx, body, true)
	var ae *abacus.Error
	if !errors.As(err, &ae) || ae.Code != "risk_backlog" || ae.Kind != abacus.KindUnavailable || ae.RetryAfter < 1 {
		t.Fatalf("past the backlog: %v, want unavailable risk_backlog with a Retry-After", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("refused after %s, want it to wait BacklogWait for the applier first", waited)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatalf("a barrier past the backlog: %v", err)
	}
	if ev, _ := storedRows(t, d); ev != 3 {
		t.Fatalf("%d events stored, want the 3 answered and not the refused one", ev)
	}
	if _, _, err := svc.Decide(ctx, body, true); err != nil {
		t.Fatalf("once the applier caught up: %v", err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, _ := storedRows(t, d); ev != 4 {
		t.Fatalf("%d events stored, want 4", ev)
	}
}
