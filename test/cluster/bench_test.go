package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/cluster"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// TestIngestionClusterVsSingle measures end-to-end ingestion (from the
// first request until every acknowledged event is metered) on the cluster
// (2 api,ingest + 2 meter nodes, 3 nats-servers with R3 streams,
// PostgreSQL, through the balancer) and on one `abacus serve` process
// (embedded NATS, the same PostgreSQL) in the same run. A benchmark, not a
// test: it runs only with ABACUS_CLUSTER_BENCH=1 (docs/benchmarks.md,
// "cluster").
func TestIngestionClusterVsSingle(t *testing.T) {
	if os.Getenv("ABACUS_CLUSTER_BENCH") != "1" {
		t.Skip("a benchmark: set ABACUS_CLUSTER_BENCH=1 to run it")
	}
	events := int64(400_000)
	measure := func(name, base, key string) float64 {
		ctx := context.Background()
		api := client.New(base, key, &http.Client{Timeout: 30 * time.Second})
		typ := "bench_" + randomHex()
		if _, err := client.Retry(ctx, client.Backoff{MaxAttempts: 50}, func(ctx context.Context) error {
			_, err := api.CreateMeter(ctx, client.Meter{Slug: typ + "_count", EventType: typ, Aggregation: "COUNT"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := loadgen.Run(ctx, loadgen.Config{Events: events, Conns: 16, BatchSize: 1000,
			Backoff: client.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}},
			loadgen.NewGen(typ, typ, "bench", 1000, 0), loadgen.HTTPSender(api))
		if err != nil || res.Failed != nil {
			t.Fatalf("%s: %v %v", name, err, res.Failed)
		}
		acked := time.Since(start)
		q := loadgen.Window(start, 0)
		q.To = loadgen.Window(time.Now(), 0).To
		waitFor(t, 5*time.Minute, name+" to meter every event", func() bool {
			v, err := loadgen.Total(ctx, api, typ+"_count", q)
			return err == nil && v.IntPart() == events
		})
		total := time.Since(start)
		rate := float64(events) / total.Seconds()
		t.Logf("%-8s %d events: acknowledged in %s (%.0f/s), metered in %s: %.0f events/s end to end (%d retries)",
			name, events, acked.Round(time.Millisecond), float64(events)/acked.Seconds(), total.Round(time.Millisecond), rate, res.Attempts-res.Requests)
		return rate
	}
	// Single process first, then the cluster, in the same run.
	schema := "bench_" + randomHex()
	dbURL, err := cluster.Schema(context.Background(), dbtest.PostgresURL(), schema, 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.DropSchema(context.Background(), dbtest.PostgresURL(), schema) })
	dir := t.TempDir()
	key := "abk_bench" + randomHex() + randomHex()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	single := &cluster.Proc{Name: "single", Kind: "abacus", HTTP: addr, Log: filepath.Join(dir, "single.log"),
		Args: []string{abacusBin, "serve"},
		Env: []string{"ABACUS_DATA_DIR=" + filepath.Join(dir, "data"), "ABACUS_HTTP_ADDR=" + addr, "ABACUS_DATABASE_URL=" + dbURL,
			"ABACUS_DATABASE_MAX_CONNS=16", "ABACUS_BOOTSTRAP_API_KEY=" + key, "ABACUS_LOG_LEVEL=warn"}}
	if err := single.Start(); err != nil {
		t.Fatal(err)
	}
	if err := single.WaitReady(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	one := measure("single", "http://"+addr, key)
	_ = single.Stop(30 * time.Second)

	c := startCluster(t, []cluster.Node{
		{Name: "api-1", Roles: []string{"api", "ingest"}}, {Name: "api-2", Roles: []string{"api", "ingest"}},
		{Name: "meter-1", Roles: []string{"meter"}}, {Name: "meter-2", Roles: []string{"meter"}},
	}, false)
	many := measure("cluster", c.BalancerURL, c.APIKey)
	t.Logf("cluster / single = %.2f", many/one)
}

func freePort(t *testing.T) int {
	t.Helper()
	ps, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}
