package risk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// gather takes what is queued; with a due time it also takes what
// arrives until then, but never more than MaxCommitBatch events.
func TestGatherWaitsUntilDueUnderLoad(t *testing.T) {
	s := &Service{cfg: Config{MaxCommitBatch: 5}.withDefaults(), commitCh: make(chan *commitReq, 16)}
	req := func(n int) *commitReq { return &commitReq{items: make([]*pending, n)} }

	s.commitCh <- req(1)
	if got := s.gather([]*commitReq{req(1)}, time.Time{}); len(got) != 2 {
		t.Fatalf("without a due time: %d requests, want the first and the one queued", len(got))
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		s.commitCh <- req(1)
	}()
	start := time.Now()
	got := s.gather([]*commitReq{req(1)}, start.Add(100*time.Millisecond))
	if len(got) != 2 {
		t.Fatalf("with a due time: %d requests, want the one that arrived before it too", len(got))
	}
	if waited := time.Since(start); waited < 100*time.Millisecond || waited > time.Second {
		t.Fatalf("waited %s, want until the due time (100ms)", waited)
	}

	for range 3 {
		s.commitCh <- req(2)
	}
	start = time.Now()
	got = s.gather([]*commitReq{req(1)}, start.Add(2*time.Second))
	if n := events(got); n != 5 {
		t.Fatalf("gathered %d events, want MaxCommitBatch (5) at once", n)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a full batch waited for its due time")
	}
	<-s.commitCh // the request left queued

	start = time.Now()
	got = s.gather([]*commitReq{req(1)}, start.Add(50*time.Millisecond))
	if len(got) != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("gathered %d requests in %s; want the first alone, after the due time", len(got), time.Since(start))
	}
}

func events(reqs []*commitReq) int {
	n := 0
	for _, r := range reqs {
		n += len(r.items)
	}
	return n
}

// A request whose commit hook fails (its Idempotency-Key claim was taken
// over) is answered that error and stores nothing; the requests committed
// with it are stored all the same.
func TestCommitRefusesOnlyTheRequestWhoseHookFails(t *testing.T) {
	d := dbtest.Open(t, db.SQLite)
	s := &Service{db: d, clock: abacus.SystemClock{}, metrics: newCommitMetrics()}
	refusal := errors.New("claim taken over")
	req := func(customer string, hook db.CommitHook) *commitReq {
		id := abacus.NewID("rev")
		p := &pending{tenant: "ten_1", customer: customer, evJSON: []byte(`{}`), fJSON: []byte(`{}`), dJSON: []byte(`{}`),
			ev: &Event{ID: id, Type: "order", Time: time.Now(), CustomerID: customer}, d: &Decision{ID: decisionIDOf(id), Decision: Allow}}
		r := &commitReq{items: []*pending{p}, done: make(chan error, 1)}
		if hook != nil {
			r.hooks = db.WithCommitHook(context.Background(), hook)
		}
		return r
	}
	ok := func(context.Context, *db.Tx) error { return nil }
	fail := func(context.Context, *db.Tx) error { return refusal }
	reqs := []*commitReq{req("a", ok), req("b", fail), req("c", nil)}
	s.commitAnswering(reqs)
	for i, want := range []error{nil, refusal, nil} {
		if err := <-reqs[i].done; !errors.Is(err, want) {
			t.Fatalf("request %d answered %v, want %v", i, err, want)
		}
	}
	var got []string
	rows, err := d.QueryContext(context.Background(), `SELECT customer_id FROM risk_events ORDER BY customer_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if strings.Join(got, ",") != "a,c" {
		t.Fatalf("stored events of %v, want a and c", got)
	}
}
