package usage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/service"
)

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// bundle is a running pipeline: database, embedded NATS, the HTTP API
// with the metering routes, the ingest and meter roles.
type bundle struct {
	t      testing.TB
	d      *db.DB
	bus    *natsbus.Bus
	clock  *abacus.FakeClock
	base   string
	key    string // admin key of tenant A
	tenant string
	id     *identity.Service
	svc    *usage.Service
}

type options struct {
	afterCommit func(p int) error
	partitions  int
	maxLag      int
	rules       bool // the ingester checks tenants' rules through the service's cache, as the app wires it
}

func setup(t testing.TB, d *db.DB, o options) *bundle {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	reg := prometheus.NewRegistry()
	srv := httpapi.New(httpapi.Config{Version: "test"}, d, log, reg)
	id := identity.NewService(d, clock, log)
	srv.SetAuthenticator(id.Authenticate)
	tenant, key, err := id.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if o.partitions == 0 {
		o.partitions = 2
	}
	svc := usage.NewService(d, clock, log, metering.Limits{})
	usage.RegisterRoutes(srv, svc)
	ic := usage.IngestConfig{Partitions: o.partitions, LagPoll: 20 * time.Millisecond, MaxLag: o.maxLag}
	if o.rules {
		ic.Rules = svc.Rules()
	}
	in, err := usage.NewIngester(ctx, bus, ic, clock, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	usage.RegisterIngest(srv, in)
	ws := usage.NewWorkers(d, bus, usage.WorkerConfig{Partitions: o.partitions, AfterCommit: o.afterCommit, RetryInterval: 20 * time.Millisecond},
		clock, log, reg)
	for _, s := range []service.Service{service.NewFunc("ingest", in.Run), service.NewFunc("meter", ws.Run)} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &bundle{t: t, d: d, bus: bus, clock: clock, base: hs.URL, key: key, tenant: tenant.ID, id: id, svc: svc}
}

// newTenant creates another tenant and returns an admin key for it.
func (b *bundle) newTenant() string {
	b.t.Helper()
	ctx := context.Background()
	tn, err := b.id.CreateTenant(ctx, "other")
	if err != nil {
		b.t.Fatal(err)
	}
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tn.ID, Kind: "api_key", ID: "test", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	_, key, err := b.id.CreateAPIKey(pctx, identity.NewKeyInput{Name: "b", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if err != nil {
		b.t.Fatal(err)
	}
	return key
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

func (b *bundle) do(method, path, key, contentType string, body any, headers ...string) resp {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(v))
	default:
		j, _ := json.Marshal(v)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.base+path, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: out}
}

// ingest posts events and requires 204.
func (b *bundle) ingest(key, contentType, body string) {
	b.t.Helper()
	if r := b.do("POST", "/api/v1/events", key, contentType, body); r.status != http.StatusNoContent {
		b.t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

// waitProcessed waits until every meter consumer has acknowledged every
// message published so far.
func (b *bundle) waitProcessed() {
	b.t.Helper()
	ctx := context.Background()
	js := b.bus.JetStream()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := js.Stream(ctx, usage.Stream)
		if err != nil {
			b.t.Fatal(err)
		}
		last := st.CachedInfo().State.LastSeq
		done := true
		for p := 0; ; p++ {
			c, err := js.Consumer(ctx, usage.Stream, usage.ConsumerName(p))
			if err == jetstream.ErrConsumerNotFound {
				break
			}
			if err != nil {
				done = false
				break
			}
			ci := c.CachedInfo()
			if ci.NumPending > 0 || ci.NumAckPending > 0 || (ci.Delivered.Stream < last && ci.AckFloor.Stream < last && ci.NumPending != 0) {
				done = false
			}
		}
		var sum int64
		rows, err := b.d.QueryContext(ctx, `SELECT stream_seq FROM metering_offsets`)
		if err != nil {
			b.t.Fatal(err)
		}
		for rows.Next() {
			var s int64
			_ = rows.Scan(&s)
			sum = max(sum, s)
		}
		rows.Close()
		if done && (last == 0 || uint64(sum) >= last) {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling real background work, not the clock
	}
	b.t.Fatal("events were not processed within 10s")
}

func runBoth(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	dbtest.Run(t, fn)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
