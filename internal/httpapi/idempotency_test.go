package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// step is what one call of the test handler does: write a row (in a
// transaction, as one statement, or not at all), then answer, fail or
// "crash" (panic: the middleware's recording step never runs, as when the
// process dies between the handler's commit and the recording).
type step struct {
	write string // "tx", "exec" or ""
	then  string // "ok" (201), "fail" (500), "closed" (499), "crash"
	// wait, when set, is waited for before writing.
	wait chan struct{}
	// hold, when set, holds the write transaction open after the claim's
	// commit mark, until it is closed; committing is closed meanwhile.
	hold, committing chan struct{}
}

type idemBundle struct {
	d    *db.DB
	url  string
	mu   sync.Mutex
	next []step
	runs int
}

// setupIdem serves POST /things, which runs the steps given one per call.
func setupIdem(t *testing.T, d *db.DB, steps ...step) *idemBundle {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), `CREATE TABLE things (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	b := &idemBundle{d: d, next: steps}
	s := httpapi.New(httpapi.Config{Version: "t"}, d, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s.SetAuthenticator(func(context.Context, string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: "ten_1", Kind: "api_key", ID: "key_1", Scopes: []abacus.Scope{httpapi.ScopePublic}}, nil
	})
	s.Handle("POST /things", httpapi.ScopePublic, http.HandlerFunc(b.serve))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *idemBundle) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	st := b.next[0]
	b.next = b.next[1:]
	b.runs++
	b.mu.Unlock()
	if st.wait != nil {
		<-st.wait
	}
	ctx := r.Context()
	if st.hold != nil {
		ctx = db.WithCommitHook(ctx, func(context.Context, *db.Tx) error {
			close(st.committing)
			<-st.hold
			return nil
		})
	}
	var err error
	switch st.write {
	case "tx":
		err = b.d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO things (id) VALUES ($1)`, abacus.NewID("thg"))
			return err
		})
	case "exec":
		_, err = b.d.ExecContext(ctx, `INSERT INTO things (id) VALUES ($1)`, abacus.NewID("thg"))
	}
	switch {
	case err != nil:
		httpapi.WriteError(w, r, slog.New(slog.DiscardHandler), err)
	case st.then == "crash":
		panic("the process dies here")
	case st.then == "fail":
		httpapi.WriteError(w, r, slog.New(slog.DiscardHandler), io.ErrUnexpectedEOF)
	case st.then == "closed":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(499) // as ProblemFrom answers a cancelled request
		_, _ = w.Write([]byte(`{"code":"client_closed"}`))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"created":true}`))
	}
}

// post sends the same request with the same key every time.
func (b *idemBundle) post(t *testing.T) (int, string) {
	t.Helper()
	status, body, err := b.send()
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

func (b *idemBundle) send() (int, string, error) {
	req, _ := http.NewRequest("POST", b.url+"/things", strings.NewReader(`{"n":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer abk_test")
	req.Header.Set("Idempotency-Key", "k-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// outcome is the answer to a request sent in the background.
type outcome struct {
	status int
	body   string
}

// postAsync sends the request in the background.
func (b *idemBundle) postAsync() <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		status, body, err := b.send()
		if err != nil {
			body = err.Error()
		}
		ch <- outcome{status, body}
	}()
	return ch
}

// awaitCalls waits until the handler has been entered n times.
func (b *idemBundle) awaitCalls(n int) {
	for b.calls() < n {
		time.Sleep(5 * time.Millisecond)
	}
}

// calls is how many times the handler has been entered.
func (b *idemBundle) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs
}

// ageClaim makes the key's claim older than the claim timeout, as if the
// client retried more than a minute after the crash.
func (b *idemBundle) ageClaim(t *testing.T) {
	t.Helper()
	if _, err := b.d.ExecContext(context.Background(), `UPDATE idempotency_keys SET created_at = $1`,
		db.TimeOf(time.Now().Add(-2*time.Minute))); err != nil {
		t.Fatal(err)
	}
}

func (b *idemBundle) things(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.d.QueryRowContext(context.Background(), `SELECT count(*) FROM things`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, status int, body string, wantStatus int, code string) {
	t.Helper()
	var p struct{ Code string }
	_ = json.Unmarshal([]byte(body), &p)
	if status != wantStatus || p.Code != code {
		t.Fatalf("answer %d %s, want %d %s", status, body, wantStatus, code)
	}
}

// A request answered 499 client_closed did nothing: its client went away
// (or its context ended) before the work was done. A retry with the same
// Idempotency-Key must run it, not replay "the client closed the request"
// for as long as the key is kept.
func TestIdempotencyDoesNotReplayClientClosed(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupIdem(t, d, step{then: "closed"}, step{write: "tx", then: "ok"})
		if status, body := b.post(t); status != 499 {
			t.Fatalf("first attempt: %d %s, want the handler's 499", status, body)
		}
		if status, body := b.post(t); status != 201 || b.calls() != 2 {
			t.Fatalf("retry with the same key: %d %s after %d calls; want it run again (201)", status, body, b.calls())
		}
	})
}

// The crash window: the handler's write committed, then the process died
// before the answer was stored. A retry after the claim timeout used to
// take the claim for abandoned and run the handler again — a second row.
// Now the claim was marked in the handler's transaction, so the retry is
// told the outcome is unknown and nothing runs twice.
func TestIdempotencyCrashAfterCommitRunsOnce(t *testing.T) {
	t.Parallel()
	for _, write := range []string{"tx", "exec"} {
		t.Run(write, func(t *testing.T) {
			t.Parallel()
			dbtest.Run(t, func(t *testing.T, d *db.DB) {
				b := setupIdem(t, d, step{write: write, then: "crash"}, step{write: write, then: "ok"})
				if status, body := b.post(t); status != 500 {
					t.Fatalf("first attempt: %d %s, want the crash's 500", status, body)
				}
				status, body := b.post(t)
				wantCode(t, status, body, 409, "idempotency_request_in_progress")
				b.ageClaim(t)
				status, body = b.post(t)
				if n := b.things(t); n != 1 || b.calls() != 1 {
					t.Fatalf("%d rows after %d runs (retry answered %d %s); want the request applied once", n, b.calls(), status, body)
				}
				wantCode(t, status, body, 409, "idempotency_outcome_unknown")
				if !strings.Contains(body, "changed data") {
					t.Fatalf("detail does not say the request changed data: %s", body)
				}
			})
		})
	}
}

// A request that died before it changed anything is run again by a retry
// after the claim timeout, as before.
func TestIdempotencyCrashBeforeCommitRunsAgain(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupIdem(t, d, step{then: "crash"}, step{write: "tx", then: "ok"})
		b.post(t)
		b.ageClaim(t)
		if status, body := b.post(t); status != 201 || b.things(t) != 1 || b.calls() != 2 {
			t.Fatalf("retry: %d %s, %d rows after %d runs; want it run again and applied once", status, body, b.things(t), b.calls())
		}
	})
}

// A handler that committed one transaction and then failed (500) is not
// released for a retry to run again: the retry learns at once that the
// request was applied, in part at least.
func TestIdempotencyFailureAfterCommitIsNotRunAgain(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupIdem(t, d, step{write: "tx", then: "fail"}, step{write: "tx", then: "ok"})
		if status, body := b.post(t); status != 500 {
			t.Fatalf("first attempt: %d %s, want 500", status, body)
		}
		status, body := b.post(t)
		if n := b.things(t); n != 1 || b.calls() != 1 {
			t.Fatalf("%d rows after %d runs (retry answered %d %s); want the request applied once", n, b.calls(), status, body)
		}
		wantCode(t, status, body, 409, "idempotency_outcome_unknown")
		// A failure before anything committed is still released.
		b2 := setupIdem(t, dbtest.Open(t, d.Engine()), step{then: "fail"}, step{write: "tx", then: "ok"})
		b2.post(t)
		if status, body := b2.post(t); status != 201 || b2.calls() != 2 {
			t.Fatalf("retry after a 500 that changed nothing: %d %s after %d runs, want it run again", status, body, b2.calls())
		}
	})
}

// A handler that had not written anything when its claim timed out loses
// the claim to the retry: its transaction is refused, so only the retry's
// applies.
func TestIdempotencyTakenOverClaimCannotCommit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		slow := make(chan struct{})
		b := setupIdem(t, d, step{write: "tx", then: "ok", wait: slow}, step{write: "tx", then: "ok"})
		first := b.postAsync()
		b.awaitCalls(1)
		b.ageClaim(t)
		if status, body := b.post(t); status != 201 {
			t.Fatalf("retry after the claim timed out: %d %s, want it run (201)", status, body)
		}
		close(slow)
		got := <-first
		if n := b.things(t); n != 1 {
			t.Fatalf("%d rows; want only the retry's (the slow attempt answered %d %s)", n, got.status, got.body)
		}
		wantCode(t, got.status, got.body, 409, "idempotency_claim_lost")
		status, body := b.post(t)
		if status != 201 || !strings.Contains(body, "created") {
			t.Fatalf("third attempt: %d %s, want the retry's stored 201", status, body)
		}
	})
}

// A retry that comes while the first attempt is committing — its claim
// timed out before it wrote, but its mark is in the transaction now —
// must not take the claim for abandoned: it waits for the row or sees it
// marked, and the request is applied once.
func TestIdempotencyRetryDuringCommitDoesNotRunAgain(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		slow, hold, committing := make(chan struct{}), make(chan struct{}), make(chan struct{})
		b := setupIdem(t, d, step{write: "tx", then: "ok", wait: slow, hold: hold, committing: committing}, step{write: "tx", then: "ok"})
		first := b.postAsync()
		b.awaitCalls(1)
		b.ageClaim(t)
		close(slow)
		<-committing
		retry := b.postAsync()
		time.Sleep(200 * time.Millisecond) // let the retry reach the claim row
		close(hold)
		if got := <-first; got.status != 201 {
			t.Fatalf("first attempt: %d %s, want 201", got.status, got.body)
		}
		got := <-retry
		if n := b.things(t); n != 1 || b.calls() != 1 {
			t.Fatalf("%d rows after %d runs (retry answered %d %s); want the request applied once", n, b.calls(), got.status, got.body)
		}
		// The first attempt's answer may be stored by the time the retry
		// reads the row: then it is replayed.
		if got.status != 201 {
			wantCode(t, got.status, got.body, 409, "idempotency_outcome_unknown")
		}
	})
}
