package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// thingHappened is the domain event type these tests deliver.
type thingHappened struct {
	N int `json:"n"`
}

var thingEvent = outbox.Define[thingHappened]("webhooktest.thing_happened", 1, "thing", "A thing happened (tests only).")

var otherEvent = outbox.Define[thingHappened]("webhooktest.other_happened", 1, "thing", "Another thing happened (tests only).")

// testKey is one secret key for every service of a test binary, so a
// second service (a restarted process) opens the first one's secrets.
var testKey = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

func newService(t testing.TB, d *db.DB, clock abacus.Clock, cfg Config) *Service {
	t.Helper()
	cfg.EncryptionKey = testKey
	s, err := NewService(d, clock, slog.New(slog.DiscardHandler), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// privateOK is the configuration of tests whose receivers are on 127.0.0.1.
var privateOK = Config{AllowPrivateTargets: true, Timeout: 30 * time.Second}

func tenantCtx(tenant string) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

// delivery is one request a receiver got.
type delivery struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Header                   http.Header
}

// receiver is a real HTTP server that records what it gets and answers
// with answer(n), n counting the requests of that webhook-id from 1.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	perID  map[string]int
	answer func(id string, n int) int
}

func newReceiver(t testing.TB, answer func(id string, n int) int) *receiver {
	r := &receiver{perID: map[string]int{}, answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.got = append(r.got, delivery{ID: id, Timestamp: req.Header.Get("webhook-timestamp"),
			Signature: req.Header.Get("webhook-signature"), Body: body, Header: req.Header.Clone()})
		r.perID[id]++
		n := r.perID[id]
		r.mu.Unlock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(id, n)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"attempt":%d}`, n)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// createEndpoint makes an endpoint for url in tenant.
func createEndpoint(t testing.TB, s *Service, tenant, url string, types ...string) EndpointWithSecret {
	t.Helper()
	e, err := s.CreateEndpoint(tenantCtx(tenant), EndpointInput{URL: url, EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// events returns n thing events of tenant at at.
func events(tenant string, at time.Time, n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{ID: abacus.NewID("evt"), Tenant: tenant, Type: thingEvent.Type().Name, Version: 1,
			AggregateType: "thing", AggregateID: fmt.Sprint("thing_", i), At: at, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

// step runs dispatch rounds synchronously at the clock's time until one
// starts nothing: each claims what is due, waits for every attempt it
// started and records them. It returns the attempts.
func step(t testing.TB, d *Dispatcher) []result {
	t.Helper()
	var all []result
	for {
		rs := round(t, d)
		if len(rs) == 0 {
			return all
		}
		all = append(all, rs...)
	}
}

func round(t testing.TB, d *Dispatcher) []result {
	t.Helper()
	ctx := context.Background()
	if err := d.round(ctx); err != nil {
		t.Fatal(err)
	}
	var rs []result
	for d.inflight() > 0 {
		r := <-d.done
		d.finished(r)
		rs = append(rs, r)
		d.start(ctx)
	}
	d.releasing.Wait()
	var batch []result
	for len(d.results) > 0 {
		batch = append(batch, <-d.results)
	}
	if len(batch) > 0 {
		if err := d.recordBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

// messages returns the endpoint's messages with their attempts.
func messages(t testing.TB, s *Service, tenant, endpoint string) []Message {
	t.Helper()
	l, err := s.ListDeliveries(tenantCtx(tenant), endpoint, "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return l.Data
}

// waitFor polls cond until it holds; the limit is generous because the
// machine is shared and loaded.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// payloadOf decodes a delivery's body.
func payloadOf(t testing.TB, b []byte) Payload {
	t.Helper()
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return p
}

func testKeyHex() string { return hex.EncodeToString(testKey) }

func fromHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
