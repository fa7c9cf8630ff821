// Package cluster_test runs Abacus as a cluster of real processes on this
// machine (internal/cluster: three nats-servers clustered with JetStream,
// streams replicated ×3, PostgreSQL, two api,ingest nodes, two meter
// nodes, two outbox nodes and the load balancer) and breaks it:
//
//   - TestChaos kills with SIGKILL, in turn, an ingest node, a meter node,
//     the outbox node holding the relay and one nats-server, under
//     ingestion and API traffic through the balancer, restarting each
//     afterwards; then every acknowledged event must be counted exactly
//     once and every domain event published. It prints the recovery
//     times.
//   - TestRollingRestart restarts every node one by one with SIGTERM under
//     load through the balancer: no request may fail.
//
// Reduced scale by default (each test well under 90 s on a quiet 2-core
// machine); ABACUS_CLUSTER_SCALE=full sends ten times the events and
// repeats the kills (docs/operations.md, "Chaos tests").
package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/cluster"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

var abacusBin string

func TestMain(m *testing.M) {
	// A binary built beforehand (ABACUS_BIN), so a measurement under
	// /work/tools/bench does not hold the lock while compiling.
	if abacusBin = os.Getenv("ABACUS_BIN"); abacusBin != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "abacus-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	abacusBin = filepath.Join(dir, "abacus")
	cmd := exec.Command("go", "build", "-o", abacusBin, "./cmd/abacus")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building abacus: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func full() bool { return os.Getenv("ABACUS_CLUSTER_SCALE") == "full" }

// startCluster plans and starts the test topology in a schema of its own;
// with ownPG on a PostgreSQL server of its own, which the test may crash.
// Each prep sees the plan before anything starts.
func startCluster(t *testing.T, nodes []cluster.Node, ownPG bool, prep ...func(*cluster.Cluster)) *cluster.Cluster {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	schema := "cl_" + hex.EncodeToString(b)
	dir := t.TempDir()
	if ownPG {
		// PostgreSQL runs as the postgres user, who must reach its data
		// directory: not under t.TempDir's private parent.
		var err error
		if dir, err = os.MkdirTemp("", "abacus-chaos-"); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(dir, 0o755)
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	c, err := cluster.Plan(ctx, cluster.Options{Dir: dir, Bin: abacusBin, Nodes: nodes, OwnPostgres: ownPG,
		DatabaseURL: dbtest.PostgresURL(), Schema: schema, MaxConns: 4,
		Env: []string{"ABACUS_LOG_LEVEL=info", "ABACUS_OUTBOX_POLL_INTERVAL=50ms", "ABACUS_BILLING_POLL_INTERVAL=300ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Stop(5 * time.Second)
		if t.Failed() {
			for _, p := range c.Procs {
				t.Logf("---- %s log tail:\n%s", p.Name, p.Tail(1500))
			}
		}
		if t.Failed() || os.Getenv("ABACUS_CLUSTER_KEEP_LOGS") != "" {
			// The whole logs outlive the test's directory.
			keep := filepath.Join(os.TempDir(), "abacus-cluster-logs-"+schema)
			if err := os.CopyFS(keep, os.DirFS(filepath.Join(c.Dir, "logs"))); err == nil {
				t.Logf("logs kept in %s", keep)
			}
		}
		if ownPG {
			_ = cluster.StopPostgres(c.Postgres)
		} else {
			_ = cluster.DropSchema(context.Background(), c.Postgres.URL, schema)
		}
	})
	for _, f := range prep {
		f(c)
	}
	if err := c.Start(ctx, false, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// ackClock records when the ingestion stream last advanced, to measure
// the longest time clients went without an acknowledgement.
type ackClock struct {
	mu   sync.Mutex
	last time.Time
	cur  time.Duration
}

func watchAcks(ctx context.Context, acked *atomic.Int64) *ackClock {
	a := &ackClock{last: time.Now()}
	go func() {
		prev := acked.Load()
		for ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			n := acked.Load()
			a.mu.Lock()
			now := time.Now()
			if n != prev {
				prev = n
				a.last = now
			}
			a.cur = max(a.cur, now.Sub(a.last))
			a.mu.Unlock()
		}
	}()
	return a
}

// window returns the longest gap since the last call.
func (a *ackClock) window() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.cur
	a.cur = 0
	return g
}

// apiTraffic creates customers through the balancer, each retried with
// its Idempotency-Key until it succeeds; it returns how many were
// created when ctx ends. A key whose first request died with the node
// that ran it answers 409 (in progress) until the claim times out (a
// minute): it is set aside and sent again after ctx ends, so traffic goes
// on meanwhile and every customer is still counted once.
func apiTraffic(ctx context.Context, base, key string, created *atomic.Int64, failures *atomic.Int64) {
	hc := &http.Client{Timeout: 10 * time.Second}
	// created reports whether the customer of key ik exists now: a 2xx, or
	// its external id (the key itself) taken — by the first attempt, which
	// committed before its node died and before its answer was stored.
	create := func(ik string, body []byte) (created bool, code string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/api/v1/customers", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", ik)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var problem struct {
			Code string `json:"code"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&problem)
		return resp.StatusCode/100 == 2 || problem.Code == "external_id_taken", problem.Code
	}
	// exists asks whether the customer of key ik is stored (its external
	// id is the key).
	exists := func(ik string) bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/customers?external_id="+ik, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var list struct {
			Data []json.RawMessage `json:"data"`
		}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Data) > 0
	}
	type parked struct {
		ik   string
		body []byte
		at   time.Time
	}
	var aside []parked
	for i := 0; ctx.Err() == nil; i++ {
		ik := fmt.Sprintf("chaos-%d-%s", i, randomHex())
		body, _ := json.Marshal(map[string]any{"name": "Chaos " + ik, "currency": "EUR", "external_id": ik})
		for ctx.Err() == nil {
			ok, code := create(ik, body)
			if ok {
				created.Add(1)
				break
			}
			failures.Add(1)
			if code == "idempotency_request_in_progress" {
				aside = append(aside, parked{ik, body, time.Now()})
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A set-aside key is settled without waiting out its claim: its
	// customer is stored (count it) or, 15 s after its request (10 s
	// client timeout) on a node that died, never will be.
	for _, p := range aside {
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if ok, _ := create(p.ik, p.body); ok || exists(p.ik) {
				created.Add(1)
				break
			}
			if time.Since(p.at) > 15*time.Second {
				break
			}
		}
	}
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publishedEvents counts domain events of type typ on the events stream.
func publishedEvents(t *testing.T, natsURL, typ string) int {
	t.Helper()
	n, err := countPublished(natsURL, typ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// publishedSoFar is publishedEvents for a wait: while the stream has no
// leader (a nats-server was just killed) the count is asked again.
func publishedSoFar(natsURL, typ string) int {
	n, err := countPublished(natsURL, typ)
	if err != nil {
		return -1
	}
	return n
}

func countPublished(natsURL, typ string) (int, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "ABACUS_EVENTS")
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("abacus.events."+typ))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

// ownedPartitions sums a meter node's abacus_metering_partition_owned.
func ownedPartitions(p *cluster.Proc) int {
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "abacus_metering_partition_owned{") && strings.HasSuffix(line, " 1") {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	took, ok := waitUntil(timeout, cond)
	if !ok {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return took
}

// waitUntil polls cond until it holds (true) or timeout passes (false).
func waitUntil(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			return timeout, false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), true
}

// dumpStacks has each running named process write its goroutines to its
// log (SIGQUIT ends a Go program with a dump), for a wait that timed out.
func dumpStacks(t *testing.T, c *cluster.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		if p := c.Proc(n); p != nil && p.Alive() {
			_ = p.Signal(syscall.SIGQUIT)
			_ = p.Wait(5 * time.Second)
			t.Logf("%s: goroutines dumped to its log", n)
		}
	}
}

func TestChaos(t *testing.T) {
	c := startCluster(t, []cluster.Node{
		{Name: "api-1", Roles: []string{"api", "ingest"}}, {Name: "api-2", Roles: []string{"api", "ingest"}},
		{Name: "meter-1", Roles: []string{"meter"}}, {Name: "meter-2", Roles: []string{"meter"}},
		{Name: "outbox-1", Roles: []string{"outbox"}}, {Name: "outbox-2", Roles: []string{"outbox"}},
		{Name: "billing-1", Roles: []string{"billing"}}, {Name: "billing-2", Roles: []string{"billing"}},
	}, true, func(c *cluster.Cluster) {
		// The meters reach NATS through nats-2, the server the test kills
		// (they learn the others from it and reconnect there).
		for _, m := range []string{"meter-1", "meter-2"} {
			p := c.Proc(m)
			p.Env = append(p.Env, "ABACUS_NATS_URL=nats://"+c.Proc("nats-2").Dial)
		}
	})
	// A steady rate, so the kills happen under traffic.
	events, rate, rounds := int64(40_000), 2500.0, 1
	if full() {
		events, rate, rounds = 1_000_000, 8000, 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	api := client.New(c.BalancerURL, c.APIKey, &http.Client{Timeout: 10 * time.Second})
	typ := "chaos_" + randomHex()
	for _, m := range []client.Meter{
		{Slug: typ + "_sum", EventType: typ, Aggregation: "SUM", ValueProperty: "$.value"},
		{Slug: typ + "_count", EventType: typ, Aggregation: "COUNT"},
	} {
		if _, err := client.Retry(ctx, client.Backoff{MaxAttempts: 50}, func(ctx context.Context) error {
			_, err := api.CreateMeter(ctx, m)
			return err
		}); err != nil {
			t.Fatalf("creating meter %s: %v", m.Slug, err)
		}
	}
	var acked, created, apiFailures atomic.Int64
	start := time.Now()
	type outcome struct {
		res loadgen.Result
		err error
	}
	sent := make(chan outcome, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{Events: events, Rate: rate, Conns: 4, BatchSize: 100, Progress: &acked,
			Backoff: client.Backoff{Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond}},
			loadgen.NewGen(typ, typ, "chaos-test", 50, 0), loadgen.HTTPSender(api))
		sent <- outcome{res, err}
	}()
	apiCtx, stopAPI := context.WithCancel(ctx)
	apiDone := make(chan struct{})
	go func() { defer close(apiDone); apiTraffic(apiCtx, c.BalancerURL, c.APIKey, &created, &apiFailures) }()
	acks := watchAcks(ctx, &acked)

	victims := []string{"api-1", "meter-1", "outbox", "billing", "nats-2", "postgres"}
	steps := rounds * len(victims)
	type recovery struct {
		victim string
		what   string
		took   time.Duration
	}
	var recoveries []recovery
	var billed []string // subscriptions seeded during the billing kills
	for i := 0; i < steps; i++ {
		victim := victims[i%len(victims)]
		threshold := events * int64(i+1) / int64(steps+1)
		waitFor(t, 3*time.Minute, fmt.Sprintf("%d acknowledged events before killing %s", threshold, victim), func() bool {
			return acked.Load() >= threshold
		})
		acks.window()
		if victim == "postgres" {
			for _, r := range crashPostgres(t, ctx, c, &created, acks) {
				recoveries = append(recoveries, recovery{"postgres", r.what, r.took})
			}
			continue
		}
		second := i/len(victims)%2 == 1 // odd rounds kill the other node of a pair
		var p *cluster.Proc
		switch victim {
		case "outbox", "meter-1", "billing":
			name := strings.TrimSuffix(victim, "-1")
			p = c.Proc(name + "-1")
			if second {
				p = c.Proc(name + "-2")
			}
		default:
			p = c.Proc(victim)
		}
		var seeded chan []string
		if victim == "billing" {
			// A period close under way: backdated subscriptions being
			// created and billed while the billing node dies.
			seeded = make(chan []string, 1)
			go func() { seeded <- seedBilling(t, ctx, api, fmt.Sprintf("r%d", i), 20, 2) }()
			waitFor(t, time.Minute, "the first invoices of the period close", func() bool {
				invs, err := invoices(ctx, api)
				return err == nil && len(invs) > 3*len(billed)
			})
		}
		before := created.Load()
		if victim == "nats-2" {
			// A loaded machine's meters fall behind, and messages delivered
			// to them may still be in nats-2's buffers when it dies, lost on
			// their way (a worker must then re-read from its offset, not
			// commit past them). Pausing the meters for a second of traffic
			// gives that a chance; it does not make it certain (the kernel's
			// socket buffers hold a second of it), so
			// TestMissedDeliveryIsNotSkipped (internal/metering/usage) is
			// the test that always takes a delivery away.
			for _, m := range []string{"meter-1", "meter-2"} {
				if err := c.Proc(m).Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Second)
		}
		killedAt := time.Now()
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if victim == "nats-2" {
			for _, m := range []string{"meter-1", "meter-2"} {
				if err := c.Proc(m).Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Logf("kill -9 %s at %d acknowledged events", p.Name, acked.Load())
		switch {
		case strings.HasPrefix(p.Name, "meter"):
			other := c.Proc("meter-1")
			if other == p {
				other = c.Proc("meter-2")
			}
			took := waitFor(t, time.Minute, "the surviving meter node to own every partition", func() bool { return ownedPartitions(other) == 4 })
			recoveries = append(recoveries, recovery{p.Name, "survivor owns every partition", took})
		case strings.HasPrefix(p.Name, "outbox"):
			// A customer created after the kill must be published.
			last := 0
			took, ok := waitUntil(time.Minute, func() bool {
				last = publishedSoFar(c.NATSURL, "customer.created")
				return created.Load() > before && last > int(before)
			})
			if !ok {
				t.Logf("outbox-1:\n%s\noutbox-2:\n%s", metricLines(c.Proc("outbox-1"), "abacus_outbox_"), metricLines(c.Proc("outbox-2"), "abacus_outbox_"))
				dumpStacks(t, c, "outbox-1", "outbox-2")
				t.Fatalf("timed out after a minute waiting for a domain event recorded after the kill to be published: %d customers created before the kill, %d now, customer.created published %d times (-1: the stream did not answer)",
					before, created.Load(), last)
			}
			recoveries = append(recoveries, recovery{p.Name, "events published again", took})
		case strings.HasPrefix(p.Name, "billing"):
			select {
			case subs := <-seeded:
				billed = append(billed, subs...)
			case <-time.After(2 * time.Minute):
				t.Fatal("seeding the period close did not finish")
			}
			took := waitFor(t, time.Minute, "the survivor to finish the period close", func() bool {
				invs, err := invoices(ctx, api)
				return err == nil && checkInvoices(invs, billed, 3) == nil
			})
			recoveries = append(recoveries, recovery{p.Name, "survivor finished the period close", took})
		}
		time.Sleep(500 * time.Millisecond) // let traffic run on the survivors
		if err := c.StartProc(p, false); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(ctx, 90*time.Second); err != nil {
			t.Fatal(err)
		}
		recoveries = append(recoveries, recovery{p.Name, "longest time without an ingestion ack", acks.window()})
		recoveries = append(recoveries, recovery{p.Name, "restarted and ready", time.Since(killedAt)})
		if strings.HasPrefix(p.Name, "meter") {
			took := waitFor(t, time.Minute, "the partitions to spread again", func() bool { return ownedPartitions(p) == 2 })
			recoveries = append(recoveries, recovery{p.Name, "returning node owns its share again", took})
		}
	}
	lastStep := time.Now()
	var out outcome
	select {
	case out = <-sent:
	case <-ctx.Done():
		t.Fatalf("the sender did not finish: %d of %d events acknowledged", acked.Load(), events)
	}
	if out.err != nil || out.res.Failed != nil {
		t.Fatalf("sender: %v %v", out.err, out.res.Failed)
	}
	if out.res.Events != events {
		t.Fatalf("sender acknowledged %d events, want %d", out.res.Events, events)
	}
	t.Logf("sent %d events in %d requests with %d retries in %s", out.res.Events, out.res.Requests, out.res.Attempts-out.res.Requests, out.res.Elapsed.Round(time.Millisecond))

	// Zero acknowledged events lost or counted twice.
	wantSum := loadgen.Decimal(loadgen.SumCents(0, events))
	q := loadgen.Window(start, 0)
	q.To = loadgen.Window(time.Now(), 0).To
	var lastSum, lastCount string
	settled := false
	settleStart := time.Now()
	for time.Since(settleStart) < 2*time.Minute {
		sum, count, err := loadgen.Totals(ctx, api, typ+"_sum", typ+"_count", q)
		if err == nil {
			lastSum, lastCount = sum.String(), count.String()
			if sum.Equal(wantSum) && count.IntPart() == events {
				settled = true
				break
			}
			if count.IntPart() > events || sum.GreaterThan(wantSum) {
				break // counted twice: waiting will not fix it
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !settled {
		// Stalled (a partition's worker behind) or lost (nothing behind)?
		for _, name := range []string{"meter-1", "meter-2"} {
			t.Logf("%s partitions:\n%s", name, partitionMetrics(c.Proc(name)))
		}
		t.Logf("meter consumers and stored offsets %s after the last ack:\n%s", time.Since(out.res.LastAck).Round(time.Second), meterState(ctx, c))
		if d := lostOrStalledWait(); d > 0 {
			// A message delivered but never received waits out the meter
			// consumers' ack wait (5 min) before it comes back: keep asking.
			more := time.Now()
			for time.Since(more) < d {
				time.Sleep(5 * time.Second)
				// (not ctx: the test's 10 minutes may be over by now)
				sum, count, err := loadgen.Totals(context.Background(), api, typ+"_sum", typ+"_count", q)
				if err == nil && (sum.String() != lastSum || count.String() != lastCount) {
					lastSum, lastCount = sum.String(), count.String()
					t.Logf("%s after the last ack: COUNT %s, SUM %s", time.Since(out.res.LastAck).Round(time.Second), lastCount, lastSum)
				}
			}
			t.Logf("meter consumers and stored offsets %s after the last ack:\n%s", time.Since(out.res.LastAck).Round(time.Second), meterState(context.Background(), c))
		}
		dumpStacks(t, c, "meter-1", "meter-2")
		t.Fatalf("meters: SUM %s (want %s), COUNT %s (want %d)", lastSum, wantSum, lastCount, events)
	}
	// The steps may outlast the sending (a slow recovery): then the time
	// after the last ack includes steps taken without ingestion.
	t.Logf("meters exact: COUNT %s, SUM %s; settled %s after the last ack, %s after the last step ended",
		lastCount, lastSum, time.Since(out.res.LastAck).Round(time.Millisecond), time.Since(later(lastStep, out.res.LastAck)).Round(time.Millisecond))
	// Every domain event published, once. API traffic stops only now: it
	// sends again keys set aside (their claims time out after a minute).
	// (the billing steps created a customer per subscription too)
	stopAPI()
	<-apiDone
	customers := int(created.Load()) + len(billed)
	waitFor(t, time.Minute, "every customer.created event to be published", func() bool {
		return publishedSoFar(c.NATSURL, "customer.created") >= customers
	})
	t.Logf("%d customers created (%d failed attempts, retried)", created.Load(), apiFailures.Load())
	if n := publishedEvents(t, c.NATSURL, "customer.created"); n != customers {
		t.Fatalf("customer.created published %d times for %d customers", n, customers)
	}
	// Zero invoices missing, duplicated or numbered with a gap.
	invs, err := invoices(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkInvoices(invs, billed, 3); err != nil {
		t.Fatalf("after the billing kills: %v", err)
	}
	t.Logf("%d invoices of %d subscriptions billed across the billing kills: none missing or duplicated, numbered without a gap", len(invs), len(billed))
	for _, r := range recoveries {
		t.Logf("recovery: %-9s %-40s %s", r.victim, r.what, r.took.Round(time.Millisecond))
	}
}

// TestRollingRestart restarts every node one by one with SIGTERM under
// ingestion and API traffic through the balancer, the three nats-servers
// (lame-duck mode: leaders move, clients reconnect elsewhere) and every
// Abacus node (readiness turns false first, http.drain_delay, in-flight
// requests finish); not one request may fail or need a retry.
func TestRollingRestart(t *testing.T) {
	c := startCluster(t, []cluster.Node{
		{Name: "api-1", Roles: []string{"api", "ingest"}}, {Name: "api-2", Roles: []string{"api", "ingest"}},
		{Name: "meter-1", Roles: []string{"meter"}}, {Name: "meter-2", Roles: []string{"meter"}},
		{Name: "outbox-1", Roles: []string{"outbox"}},
	}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	api := client.New(c.BalancerURL, c.APIKey, &http.Client{Timeout: 10 * time.Second})
	typ := "roll_" + randomHex()
	if _, err := client.Retry(ctx, client.Backoff{MaxAttempts: 50}, func(ctx context.Context) error {
		_, err := api.CreateMeter(ctx, client.Meter{Slug: typ + "_count", EventType: typ, Aggregation: "COUNT"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var acked, created, apiFailures atomic.Int64
	lctx, stopLoad := context.WithCancel(ctx)
	type outcome struct {
		res loadgen.Result
		err error
	}
	sent := make(chan outcome, 1)
	// Failed sends (the generator's attempts also count requests the
	// test's own stop interrupts).
	var sendFailures atomic.Int64
	var firstFailure atomic.Value
	send := loadgen.HTTPSender(api)
	go func() {
		res, err := loadgen.Run(lctx, loadgen.Config{Duration: 10 * time.Minute, Rate: 1500, Conns: 4, BatchSize: 50, Progress: &acked,
			Backoff: client.Backoff{Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond}},
			loadgen.NewGen(typ, typ, "roll-test", 20, 0), func(ctx context.Context, single bool, body []byte) error {
				// A request in flight when the test stops the load
				// finishes (were it cancelled, its events might be
				// stored yet not counted as sent).
				err := send(context.WithoutCancel(ctx), single, body)
				if err != nil {
					sendFailures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				return err
			})
		sent <- outcome{res, err}
	}()
	apiDone := make(chan struct{})
	go func() { defer close(apiDone); apiTraffic(lctx, c.BalancerURL, c.APIKey, &created, &apiFailures) }()
	var reads, readFailures atomic.Int64
	readsDone := make(chan struct{})
	go func() {
		defer close(readsDone)
		hc := &http.Client{Timeout: 10 * time.Second}
		for lctx.Err() == nil {
			req, _ := http.NewRequest(http.MethodGet, c.BalancerURL+"/api/v1/customers?limit=5", nil)
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
			resp, err := hc.Do(req)
			reads.Add(1)
			if err != nil {
				readFailures.Add(1)
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					readFailures.Add(1)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitFor(t, time.Minute, "traffic to flow", func() bool { return acked.Load() > 1000 && created.Load() > 5 })
	for _, p := range c.Procs {
		if p.Kind == "balancer" {
			continue
		}
		at := acked.Load()
		start := time.Now()
		if err := p.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(start)
		if err := c.StartProc(p, false); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(ctx, 90*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted %-8s at %6d acknowledged events: stopped in %s, ready again after %s", p.Name, at,
			stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
	}
	stopLoad()
	out := <-sent
	<-apiDone
	<-readsDone
	if out.err != nil {
		t.Fatal(out.err)
	}
	t.Logf("during the rolling restart: %d events in %d requests (%d failed sends), %d customers created (%d failed attempts), %d reads (%d failed)",
		out.res.Events, out.res.Requests, sendFailures.Load(), created.Load(), apiFailures.Load(), reads.Load(), readFailures.Load())
	if sendFailures.Load() != 0 || apiFailures.Load() != 0 || readFailures.Load() != 0 {
		t.Fatalf("requests failed during the rolling restart: %d ingestion requests (first: %v), %d customer creations, %d reads",
			sendFailures.Load(), firstFailure.Load(), apiFailures.Load(), readFailures.Load())
	}
	q := loadgen.Window(time.Now().Add(-10*time.Minute), 0)
	q.To = loadgen.Window(time.Now(), 0).To
	var got int64
	wait := time.Now()
	for got != out.res.Events && time.Since(wait) < time.Minute {
		if v, err := loadgen.Total(ctx, api, typ+"_count", q); err == nil {
			got = v.IntPart()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != out.res.Events {
		t.Fatalf("COUNT %d after a minute, want the %d events acknowledged", got, out.res.Events)
	}
}

type took struct {
	what string
	took time.Duration
}

// crashPostgres stops the cluster's own PostgreSQL in immediate mode (every
// backend gone at once, recovery from the WAL on start), starts it again
// and measures how long the nodes take to serve again.
func crashPostgres(t *testing.T, ctx context.Context, c *cluster.Cluster, created *atomic.Int64, acks *ackClock) []took {
	t.Helper()
	crashedAt := time.Now()
	if err := cluster.CrashPostgres(c.Postgres); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL stopped in immediate mode")
	time.Sleep(500 * time.Millisecond) // every node notices
	before := created.Load()
	startedAt := time.Now()
	if _, err := cluster.RestartPostgres(ctx, c.Postgres); err != nil {
		t.Fatal(err)
	}
	out := []took{{"down, then started again (recovery from the WAL)", time.Since(crashedAt)}}
	out = append(out, took{"API writes succeed again after the start", waitFor(t, time.Minute, "a customer created after PostgreSQL restarted",
		func() bool { return created.Load() > before })})
	out = append(out, took{"partitions owned again after the start", time.Since(startedAt) + waitFor(t, time.Minute,
		"every partition owned again", func() bool { return ownedPartitions(c.Proc("meter-1"))+ownedPartitions(c.Proc("meter-2")) == 4 })})
	return append(out, took{"longest time without an ingestion ack", acks.window()})
}

// partitionMetrics is a meter node's partition ownership and lag lines.
func partitionMetrics(p *cluster.Proc) string {
	return metricLines(p, "abacus_metering_partition_", "abacus_metering_meter_processes")
}

// metricLines is the lines of a node's /metrics that start with a prefix.
func metricLines(p *cluster.Proc, prefixes ...string) string {
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, prefix := range prefixes {
			if strings.HasPrefix(line, prefix) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// lostOrStalledWait is how much longer a failed TestChaos keeps reading the
// meters (ABACUS_CLUSTER_LOST_WAIT, e.g. 6m: past the meter consumers' ack
// wait, so a stalled event has come back and only a lost one is missing).
func lostOrStalledWait() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("ABACUS_CLUSTER_LOST_WAIT"))
	return d
}

// meterState describes each meter consumer as JetStream sees it beside the
// offset its partition stored: messages delivered and not acknowledged
// below the offset are ones the worker will skip when they come back.
func meterState(ctx context.Context, c *cluster.Cluster) string {
	var out []string
	if conn, err := pgx.Connect(ctx, c.DatabaseURL); err != nil {
		out = append(out, "offsets: "+err.Error())
	} else {
		rows, err := conn.Query(ctx, `SELECT partition, stream_seq, owner FROM metering_offsets ORDER BY partition`)
		if err == nil {
			for rows.Next() {
				var p, seq int64
				var owner string
				if rows.Scan(&p, &seq, &owner) == nil {
					out = append(out, fmt.Sprintf("partition %d: stored offset %d, owner %s", p, seq, owner))
				}
			}
			rows.Close()
		}
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			out = append(out, "offsets: "+err.Error())
		}
		_ = conn.Close(ctx)
	}
	nc, err := nats.Connect(c.NATSURL)
	if err != nil {
		return strings.Join(append(out, "nats: "+err.Error()), "\n")
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for p := 0; p < 4; p++ {
		name := fmt.Sprintf("meter-%d", p)
		cons, err := js.Consumer(ctx, "ABACUS_USAGE", name)
		if err != nil {
			out = append(out, name+": "+err.Error())
			continue
		}
		i := cons.CachedInfo()
		leader := ""
		if i.Cluster != nil {
			leader = i.Cluster.Leader
		}
		out = append(out, fmt.Sprintf("%s: delivered stream %d (consumer %d), ack floor stream %d (consumer %d), ack pending %d, redelivered %d, pending %d, leader %s",
			name, i.Delivered.Stream, i.Delivered.Consumer, i.AckFloor.Stream, i.AckFloor.Consumer, i.NumAckPending, i.NumRedelivered, i.NumPending, leader))
	}
	return strings.Join(out, "\n")
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
