package usage_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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
	// partitions is the number of usage partitions, as configured
	partitions int
}

type options struct {
	afterCommit func(p int) error
	partitions  int
	maxLag      int
	rules       bool // the ingester checks tenants' rules through the service's cache, as the app wires it
	ackWait     time.Duration
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
	ws := usage.NewWorkers(d, bus, usage.WorkerConfig{Partitions: o.partitions, AfterCommit: o.afterCommit, RetryInterval: 20 * time.Millisecond, AckWait: o.ackWait},
		clock, log, reg)
	for _, s := range []service.Service{service.NewFunc("ingest", in.Run), service.NewFunc("meter", ws.Run)} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &bundle{t: t, d: d, bus: bus, clock: clock, base: hs.URL, key: key, tenant: tenant.ID, id: id, svc: svc, partitions: o.partitions}
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

// waitProcessed waits until every partition's stored offset has reached
// the last message published to that partition. The offset is committed
// with the round's rollups, so everything published so far is queryable.
// (Comparing consumer state or one offset across partitions is not
// enough: a worker recreates its consumer at start, and partitions finish
// in any order.)
func (b *bundle) waitProcessed() {
	b.t.Helper()
	ctx := context.Background()
	js := b.bus.JetStream()
	st, err := js.Stream(ctx, usage.Stream)
	if err != nil {
		b.t.Fatal(err)
	}
	want := make([]int64, b.partitions)
	for p := range want {
		m, err := st.GetLastMsgForSubject(ctx, usage.Subject(p))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			b.t.Fatal(err)
		default:
			want[p] = int64(m.Sequence)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) { // polling real background work, not the clock
		done := true
		for p, seq := range want {
			var off int64
			err := b.d.QueryRowContext(ctx, `SELECT stream_seq FROM metering_offsets WHERE partition = $1`, p).Scan(&off)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				b.t.Fatal(err)
			}
			done = done && off >= seq
		}
		if done {
			return
		}
	}
	b.t.Fatal("events were not processed within 10s")
}

func runBoth(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	dbtest.Run(t, fn)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
