package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// A request answered 499 client_closed did nothing: its client went away
// (or its context ended) before the work was done. A retry with the same
// Idempotency-Key must run it, not replay "the client closed the request"
// for as long as the key is kept.
func TestIdempotencyDoesNotReplayClientClosed(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Config{Version: "t"}, dbtest.Open(t, db.SQLite), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s.SetAuthenticator(func(context.Context, string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: "ten_1", Kind: "api_key", ID: "key_1", Scopes: []abacus.Scope{httpapi.ScopePublic}}, nil
	})
	calls := 0
	s.Handle("POST /work", httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		if calls == 1 {
			w.WriteHeader(499) // as ProblemFrom answers a cancelled request
			_, _ = w.Write([]byte(`{"code":"client_closed"}`))
			return
		}
		_, _ = w.Write([]byte(`{"done":true}`))
	}))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	post := func() (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/work", strings.NewReader(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer abk_test")
		req.Header.Set("Idempotency-Key", "k-1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := post(); status != 499 {
		t.Fatalf("first attempt: %d %s, want the handler's 499", status, body)
	}
	if status, body := post(); status != 200 || calls != 2 {
		t.Fatalf("retry with the same key: %d %s after %d calls; want it run again (200)", status, body, calls)
	}
}
