package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/metering"
)

// Static meters from the configuration are applied at start, read-only
// through the API, and a restart with the same file changes nothing.
func TestStaticMetersFromConfig(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			meters := []metering.Meter{
				{Slug: "calls", Name: "API calls", EventType: "api", Aggregation: metering.AggCount},
				{Slug: "tokens", EventType: "llm", Aggregation: metering.AggSum, ValueProperty: "$.tokens"},
			}
			var dataDir, dbURL string
			a := start(t, engine, func(c *config.Config) {
				c.Metering.Meters = meters
				dataDir, dbURL = c.DataDir, c.Database.URL
			})
			r := a.do("GET", "/api/v1/meters/tokens", a.key, nil)
			if r.status != http.StatusOK || r.json(t)["managedBy"] != "config" {
				t.Fatalf("static meter: %d %s", r.status, r.body)
			}
			created := r.json(t)["updatedAt"]
			expectProblem(t, a.do("PUT", "/api/v1/meters/tokens", a.key, map[string]any{"name": "x"}), http.StatusConflict, "meter_managed_in_config")
			expectProblem(t, a.do("DELETE", "/api/v1/meters/calls", a.key, nil), http.StatusConflict, "meter_managed_in_config")
			if err := a.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}

			// Same file: nothing changes. Then one meter is dropped.
			b := start(t, engine, func(c *config.Config) {
				c.Metering.Meters = meters
				c.DataDir, c.Database.URL = dataDir, dbURL
			})
			key := a.key
			if r := b.do("GET", "/api/v1/meters/tokens", key, nil); r.json(t)["updatedAt"] != created {
				t.Fatalf("restart with the same meters changed them: %s", r.body)
			}
			if err := b.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			c := start(t, engine, func(c *config.Config) {
				c.Metering.Meters = meters[:1]
				c.DataDir, c.Database.URL = dataDir, dbURL
			})
			if r := c.do("GET", "/api/v1/meters/tokens", key, nil); r.json(t)["managedBy"] != "api" {
				t.Fatalf("dropped static meter not released: %s", r.body)
			}
			if r := c.do("DELETE", "/api/v1/meters/tokens", key, nil); r.status != http.StatusNoContent {
				t.Fatalf("released meter: %d %s", r.status, r.body)
			}
			expectProblem(t, c.do("DELETE", "/api/v1/meters/calls", key, nil), http.StatusConflict, "meter_managed_in_config")
		})
	}
}
