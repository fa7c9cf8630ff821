package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// An ingest-only node needs the database to start, then only NATS and its
// caches: while its database cannot be reached it stays ready and keeps
// taking events with a key it has seen (identity serves a cached key for
// ten minutes when the database does not answer). A node that also runs
// the API is not ready then.
func TestIngestNodeStaysReadyWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	url := dbtest.NewSchema(t)
	now := time.Now().UTC().Truncate(time.Second)
	boot := func(roles ...string) (*app.App, *abacus.FakeClock) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.Database.URL = url
		cfg.Roles = roles
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		clock := abacus.NewFakeClock(now)
		a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler), Clock: clock})
		if err := a.Start(context.Background()); err != nil {
			t.Fatalf("start %v: %v", roles, err)
		}
		t.Cleanup(func() { _ = a.Stop(context.Background()) })
		return a, clock
	}
	status := func(a *app.App, method, path, key, body string) int {
		req, _ := http.NewRequest(method, "http://"+a.Addr()+path, bytes.NewReader([]byte(body)))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/cloudevents+json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event := func(i int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"t","type":"api","subject":"s","time":%q}`, i, now.Format(time.RFC3339))
	}
	api, _ := boot("api", "ingest")
	key := api.BootstrapKey
	ingest, clock := boot("ingest")
	if st := status(ingest, "POST", "/api/v1/events", key, event(1)); st != http.StatusNoContent {
		t.Fatalf("ingest with the database up: %d", st)
	}
	api.DB.Close() // both lose their database
	ingest.DB.Close()
	clock.Advance(time.Minute) // past the key cache's TTL
	if st := status(ingest, "GET", "/readyz", "", ""); st != http.StatusOK {
		t.Fatalf("ingest-only node without its database: readyz %d, want 200", st)
	}
	if st := status(ingest, "POST", "/api/v1/events", key, event(2)); st != http.StatusNoContent {
		t.Fatalf("ingest-only node without its database: POST /api/v1/events %d, want 204", st)
	}
	if st := status(api, "GET", "/readyz", "", ""); st != http.StatusServiceUnavailable {
		t.Fatalf("api,ingest node without its database: readyz %d, want 503", st)
	}
}
