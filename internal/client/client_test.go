package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
)

func TestEventReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string // ids
		wantErr string
	}{
		{"ndjson", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n", []string{"a", "b"}, ""},
		{"array", ` [ {"id":"a"}, {"id":"b"} ] `, []string{"a", "b"}, ""},
		{"one object", `{"id":"a","data":{"x":[1,2]}}`, []string{"a"}, ""},
		{"concatenated", `{"id":"a"}{"id":"b"}`, []string{"a", "b"}, ""},
		{"empty", "  \n", nil, ""},
		{"empty array", "[]", nil, ""},
		{"not an object", "{\"id\":\"a\"}\n42\n", []string{"a"}, "reading event 1: an event must be a JSON object"},
		{"array of non-objects", `["x"]`, nil, "reading event 0: an event must be a JSON object"},
		{"broken json", "{\"id\":\"a\"}\n{\"id\":", []string{"a"}, "reading event 1"},
		{"data after array", `[{"id":"a"}] {"id":"b"}`, []string{"a"}, "unexpected data after the JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := client.NewEventReader(strings.NewReader(tt.in))
			var got []string
			var err error
			for {
				var raw json.RawMessage
				raw, err = r.Next()
				if err != nil {
					break
				}
				var ev struct{ ID string }
				if jerr := json.Unmarshal(raw, &ev); jerr != nil {
					t.Fatalf("event is not JSON: %v", jerr)
				}
				got = append(got, ev.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
			if tt.wantErr == "" {
				if !errors.Is(err, io.EOF) {
					t.Errorf("err = %v, want io.EOF", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	d := client.Defaults{Source: "cli", Now: now}

	full := `{"id":"e1","source":"s","specversion":"1.0","type":"t","subject":"c","time":"2026-11-01T00:00:00Z","data":{"v":1.50}}`
	got, err := client.Complete(json.RawMessage(full), d)
	if err != nil || string(got) != full {
		t.Fatalf("a complete event changed: %s, %v", got, err)
	}

	got, err = client.Complete(json.RawMessage(`{"type":"t","subject":"c","id":"","data":{"v":1.50}}`), d)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	var id, tm, src, spec string
	_ = json.Unmarshal(m["id"], &id)
	_ = json.Unmarshal(m["time"], &tm)
	_ = json.Unmarshal(m["source"], &src)
	_ = json.Unmarshal(m["specversion"], &spec)
	if !strings.HasPrefix(id, "evt_") || tm != "2026-11-03T10:00:00Z" || src != "cli" || spec != "1.0" {
		t.Errorf("filled id=%q time=%q source=%q specversion=%q", id, tm, src, spec)
	}
	if string(m["data"]) != `{"v":1.50}` {
		t.Errorf("data changed to %s; the exact number text must be kept", m["data"])
	}

	if _, err := client.Complete(json.RawMessage(`null`), d); err == nil {
		t.Error("null accepted as an event")
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	unavailable := &client.Problem{Status: 503, RetryAfter: 3 * time.Second}
	badRequest := &client.Problem{Status: 400, Code: "invalid_event"}
	transport := errors.New("connection reset by peer")
	tests := []struct {
		name         string
		errs         []error // returned by attempt 1, 2, …; then nil
		maxAttempts  int
		wantAttempts int
		wantErr      error
		wantMinWait  time.Duration // of the first wait
	}{
		{"success first", nil, 0, 1, nil, 0},
		{"503 then ok honours Retry-After", []error{unavailable}, 0, 2, nil, 3 * time.Second},
		{"transport errors retried", []error{transport, transport}, 0, 3, nil, 80 * time.Millisecond},
		{"400 is not retried", []error{badRequest}, 0, 1, badRequest, 0},
		{"attempts run out", []error{transport, transport, transport}, 2, 2, transport, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var waits []time.Duration
			b := client.Backoff{MaxAttempts: tt.maxAttempts, Sleep: func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}}
			calls := 0
			n, err := client.Retry(context.Background(), b, func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if n != tt.wantAttempts || calls != tt.wantAttempts {
				t.Errorf("attempts = %d (calls %d), want %d", n, calls, tt.wantAttempts)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if len(waits) != max(tt.wantAttempts-1, 0) {
				t.Errorf("waited %d times, want %d", len(waits), tt.wantAttempts-1)
			}
			if len(waits) > 0 && waits[0] < tt.wantMinWait {
				t.Errorf("first wait %s, want at least %s", waits[0], tt.wantMinWait)
			}
		})
	}
}

func TestBackoffGrowsToMax(t *testing.T) {
	t.Parallel()
	b := client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: time.Second} {
		d := b.Delay(attempt, errors.New("x"))
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("Delay(%d) = %s, want %s ±20%%", attempt, d, want)
		}
	}
}

func TestProblemFromServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/api/v1/events":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"title":"Bad Request","status":400,"detail":"events[1].time: is required","code":"invalid_event","errors":[{"index":1,"field":"time","message":"is required"}]}`)
		case "/busy":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "overloaded")
		}
	}))
	defer srv.Close()
	c := client.New(srv.URL, "k", nil)

	err := c.SendEvents(context.Background(), client.ContentTypeBatch, []byte("[]"))
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 400 || p.Code != "invalid_event" || len(p.Errors) != 1 || *p.Errors[0].Index != 1 {
		t.Fatalf("err = %#v", err)
	}
	if client.Retryable(err) {
		t.Error("a 400 is retryable")
	}
	if !strings.Contains(err.Error(), "[1].time: is required") {
		t.Errorf("message %q does not name the bad field", err)
	}

	_, err = c.Do(context.Background(), "GET", "/busy", "", nil)
	if !client.Retryable(err) || client.RetryAfter(err) != 2*time.Second || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("503: retryable=%v retry-after=%s err=%v", client.Retryable(err), client.RetryAfter(err), err)
	}

	if _, err := client.New(srv.URL, "wrong", nil).Do(context.Background(), "GET", "/", "", nil); client.Retryable(err) {
		t.Errorf("401 is retryable: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:1": true, "http://[::1]:80": true, "http://127.1.2.3": true,
		"http://10.0.0.1:8080": false, "https://api.example.com": false, "::bad": false,
	} {
		if got := client.IsLoopback(u); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", u, got, want)
		}
	}
}
