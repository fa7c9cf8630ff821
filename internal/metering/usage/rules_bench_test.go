package usage_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/service"
)

// BenchmarkIngestRules prices the per-tenant rules on the ingest path,
// through real HTTP into embedded JetStream (no meter workers), 1000-event
// batches from 4 concurrent clients (events/s = 1e12 / ns/op):
//
//	no_rules          the ingester without a rules cache (the code before)
//	rules_none        the cache, tenant with no window and no schema: one map lookup
//	rules_window      the tenant has its own late-event window
//	rules_schema      the tenant has a JSON Schema for the events' type
//
//	go test -run '^$' -bench IngestRules -benchtime 300x -count 5 ./internal/metering/usage/
func BenchmarkIngestRules(b *testing.B) {
	for _, variant := range []string{"no_rules", "rules_none", "rules_window", "rules_schema"} {
		b.Run(variant, func(b *testing.B) { benchIngestRules(b, variant) })
	}
}

func benchIngestRules(b *testing.B, variant string) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	d, err := db.Open(ctx, db.Options{SQLitePath: filepath.Join(b.TempDir(), "abacus.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(b.TempDir(), "nats"), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	reg := prometheus.NewRegistry()
	srv := httpapi.New(httpapi.Config{Version: "bench"}, d, log, reg)
	id := identity.NewService(d, clock, log)
	srv.SetAuthenticator(id.Authenticate)
	tenant, key, err := id.Bootstrap(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	svc := usage.NewService(d, clock, log, metering.Limits{})
	cfg := usage.IngestConfig{Partitions: 4, MaxLag: 1 << 30}
	if variant != "no_rules" {
		cfg.Rules = svc.Rules()
	}
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant.ID, Kind: "api_key", ID: "b", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	switch variant {
	case "rules_window":
		_, err = svc.PutSettings(pctx, usage.MeteringSettingsUpdate{LateEventWindow: "2160h"})
	case "rules_schema":
		_, err = svc.PutSchema(pctx, "api", []byte(`{"type":"object","required":["tokens","model"],"additionalProperties":false,
			"properties":{"tokens":{"type":"integer","minimum":0},"model":{"type":"string","enum":["m0","m1","m2"]}}}`))
	}
	if err != nil {
		b.Fatal(err)
	}
	in, err := usage.NewIngester(ctx, bus, cfg, clock, log, reg)
	if err != nil {
		b.Fatal(err)
	}
	usage.RegisterIngest(srv, in)
	s := service.NewFunc("ingest", in.Run)
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	var seq atomic.Int64
	body := func() []byte {
		n := seq.Add(1)
		parts := make([]string, 1000)
		tm := testNow.Add(-time.Hour).Format(time.RFC3339)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"specversion":"1.0","id":"b%d-%d","source":"bench","type":"api","subject":"cus_%d","time":%q,"data":{"tokens":%d,"model":"m%d"}}`,
				n, i, i%100, tm, i%500, i%3)
		}
		return []byte("[" + strings.Join(parts, ",") + "]")
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = body()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	post := func(p []byte) {
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/events", bytes.NewReader(p))
		req.Header.Set("Content-Type", metering.MediaTypeCloudEventBatch)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			b.Errorf("status %d", res.StatusCode)
		}
	}
	post(bodies[0]) // warm: connections, the rules cache
	var next atomic.Int64
	b.SetParallelism(2) // 4 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(bodies[next.Add(1)%int64(len(bodies))])
		}
	})
}

// BenchmarkRulesFor is the per-request cost of the rules on the ingest
// path once cached: a tenant without rules, and one with a schema.
func BenchmarkRulesFor(b *testing.B) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	d, err := db.Open(ctx, db.Options{SQLitePath: filepath.Join(b.TempDir(), "abacus.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	svc := usage.NewService(d, abacus.NewFakeClock(testNow), log, metering.Limits{})
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_s", Kind: "api_key", ID: "b", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if _, err := svc.PutSchema(pctx, "api", []byte(`{"type":"object"}`)); err != nil {
		b.Fatal(err)
	}
	r := svc.Rules()
	for _, tenant := range []string{"ten_none", "ten_s"} {
		b.Run(tenant, func(b *testing.B) {
			if _, err := r.For(ctx, tenant); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.For(ctx, tenant); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
