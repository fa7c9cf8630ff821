package loadgen_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// startAbacus boots the whole program in-process on a free port.
func startAbacus(t *testing.T) *client.Client {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bootstrap.APIKey = "abk_loadgen_test_0123456789abcdef"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("starting abacus: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return client.New("http://"+a.Addr(), cfg.Bootstrap.APIKey, nil)
}

func TestIngestAgainstAbacusCountsExactly(t *testing.T) {
	t.Parallel()
	c := startAbacus(t)
	tests := []struct {
		name      string
		batchSize int
		events    int64
		raw       bool
	}{
		{"batches, net/http client", 250, 3000, false},
		{"single events, raw client", 1, 300, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := loadgen.IngestConfig{
				Config:       loadgen.Config{Events: tt.events, Conns: 4, BatchSize: tt.batchSize},
				CreateMeters: true, ProbeEvery: 20 * time.Millisecond, SettleTimeout: 30 * time.Second,
			}
			if tt.raw {
				raw, err := loadgen.NewRawHTTP(c.BaseURL(), "abk_loadgen_test_0123456789abcdef", 4, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				cfg.Send = raw.Sender()
			}
			r, err := loadgen.Ingest(context.Background(), c, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Exact() || r.Queryable <= 0 {
				t.Fatalf("meters SUM %s (want %s) COUNT %s (want %s), queryable %s", r.GotSum, r.WantSum, r.GotCount, r.WantCount, r.Queryable)
			}
			if r.Send.Events != tt.events || r.WantCount.IntPart() != tt.events+r.Probes {
				t.Errorf("sent %d events + %d probes, want count %s", r.Send.Events, r.Probes, r.WantCount)
			}
			if r.EndToEnd() <= 0 || r.Send.Latency.N != int(r.Send.Requests) {
				t.Errorf("end to end %v, latencies %d of %d requests", r.EndToEnd(), r.Send.Latency.N, r.Send.Requests)
			}
		})
	}
}
