// Package crash proves metering's exactly-once promise with real
// processes: an `abacus serve` (and, in one variant, an external
// nats-server) is killed with SIGKILL while a client sends events
// continuously and re-sends every batch that did not get a 2xx with the
// same ids. Afterwards every meter must equal exactly what was sent.
//
// The binaries are built once per test run. The tests run one after
// another, not in parallel: each one saturates the machine's cores, and
// kill timing is what they are about.
package crash_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

var (
	abacusBin string // built in TestMain
	natsBin   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abacus-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	abacusBin = filepath.Join(dir, "abacus")
	natsBin = filepath.Join(dir, "nats-server")
	for _, b := range [][2]string{
		{abacusBin, "github.com/abacusbilling/abacus/cmd/abacus"},
		{natsBin, "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = "../.." // the module root, so go.mod pins the versions
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b[1], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a child process that can be killed with SIGKILL and restarted
// with the same arguments.
type proc struct {
	t    *testing.T
	name string
	bin  string
	args []string
	env  []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "\n==== start %s %s\n", p.name, strings.Join(p.args, " "))
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (p *proc) kill() {
	p.t.Helper()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// stop ends the process at the end of a test (SIGKILL too: what is
// checked has been checked).
func (p *proc) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newKey(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "abk_crash" + hex.EncodeToString(b[:])
}

// waitReady polls /readyz until it answers 200, the process exits or the
// timeout passes.
func waitReady(t *testing.T, p *proc, base string, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready:\n%s", p.name, p.tail())
		default:
		}
		if resp, err := hc.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s after %s:\n%s", p.name, base, timeout, p.tail())
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scenario is one crash test: what the server runs against and what is
// killed at each step of the stream (kills are spread evenly over the
// acknowledged events); Abacus is killed once more right after the last
// acknowledgement.
type scenario struct {
	databaseURL string
	withNATS    bool     // run an external nats-server
	kills       []string // "abacus" or "nats", one per step of progress
	events      int64
}

func runScenario(t *testing.T, sc scenario) {
	dir := t.TempDir()
	key := newKey(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var nats *proc
	args := []string{"serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port)}
	if sc.databaseURL != "" {
		args = append(args, "--database-url", sc.databaseURL)
	}
	if sc.withNATS {
		np := freePort(t)
		nats = &proc{t: t, name: "nats-server", bin: natsBin, log: filepath.Join(dir, "nats.log"),
			args: []string{"-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", strconv.Itoa(np)}}
		nats.start()
		t.Cleanup(nats.stop)
		waitFor(t, 20*time.Second, "nats-server to listen", func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", np), 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		args = append(args, "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", np))
	}
	srv := &proc{t: t, name: "abacus", bin: abacusBin, args: args, log: filepath.Join(dir, "abacus.log"),
		env: []string{"ABACUS_BOOTSTRAP_API_KEY=" + key, "ABACUS_LOG_LEVEL=warn"}}
	srv.start()
	t.Cleanup(srv.stop)
	waitReady(t, srv, base, 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := client.New(base, key, &http.Client{Timeout: 10 * time.Second})
	typ := "crash_" + strings.ToLower(strings.TrimPrefix(key, "abk_crash")[:8])
	for _, m := range []client.Meter{
		{Slug: typ + "_sum", EventType: typ, Aggregation: "SUM", ValueProperty: "$.value"},
		{Slug: typ + "_count", EventType: typ, Aggregation: "COUNT"},
	} {
		if _, err := client.Retry(ctx, client.Backoff{MaxAttempts: 50}, func(ctx context.Context) error {
			_, err := c.CreateMeter(ctx, m)
			return err
		}); err != nil {
			t.Fatalf("creating meter %s: %v\n%s", m.Slug, err, srv.tail())
		}
	}

	// The sender: batches of unique events, each retried with the same
	// ids until a 2xx, whatever happens to the server.
	var acked atomic.Int64
	start := time.Now()
	g := loadgen.NewGen(typ, typ, "crash-test", 50, 0)
	type outcome struct {
		res loadgen.Result
		err error
	}
	sent := make(chan outcome, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{
			Events: sc.events, Conns: 4, BatchSize: 500, Progress: &acked,
			Backoff: client.Backoff{Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond},
		}, g, loadgen.HTTPSender(c))
		sent <- outcome{res, err}
	}()

	for i, what := range sc.kills {
		threshold := sc.events * int64(i+1) / int64(len(sc.kills)+1)
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d acknowledged events before kill %d", threshold, i+1), func() bool {
			return acked.Load() >= threshold
		})
		switch what {
		case "abacus":
			t.Logf("kill -9 abacus at %d acknowledged events", acked.Load())
			srv.kill()
			srv.start()
			waitReady(t, srv, base, 60*time.Second)
		case "nats":
			t.Logf("kill -9 nats-server at %d acknowledged events", acked.Load())
			nats.kill()
			nats.start()
		}
	}
	var out outcome
	select {
	case out = <-sent:
	case <-ctx.Done():
		t.Fatalf("the sender did not finish: %d of %d events acknowledged\n%s", acked.Load(), sc.events, srv.tail())
	}
	if out.err != nil || out.res.Failed != nil {
		t.Fatalf("sender: %v %v\n%s", out.err, out.res.Failed, srv.tail())
	}
	if out.res.Events != sc.events {
		t.Fatalf("sender acknowledged %d events, want %d", out.res.Events, sc.events)
	}
	t.Logf("sent %d events in %d requests with %d retries in %s", out.res.Events, out.res.Requests,
		out.res.Attempts-out.res.Requests, out.res.Elapsed.Round(time.Millisecond))

	// Once more while the meter role is still catching up with what was
	// acknowledged: its rounds must resume where they committed.
	t.Log("kill -9 abacus right after the last ack")
	srv.kill()
	srv.start()
	waitReady(t, srv, base, 60*time.Second)

	wantSum := loadgen.Decimal(loadgen.SumCents(0, sc.events))
	q := loadgen.Window(start, 0)
	q.To = loadgen.Window(time.Now(), 0).To
	var lastSum, lastCount string
	var lastErr error
	settled := false
	deadline := time.Now().Add(150 * time.Second)
	for time.Now().Before(deadline) {
		sum, count, err := loadgen.Totals(ctx, c, typ+"_sum", typ+"_count", q)
		lastSum, lastCount, lastErr = sum.String(), count.String(), err
		if err == nil && sum.Equal(wantSum) && count.IntPart() == sc.events {
			settled = true
			break
		}
		if err == nil && (count.IntPart() > sc.events || sum.GreaterThan(wantSum)) {
			break // counted twice: waiting will not fix it
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !settled {
		t.Fatalf("meters after the crashes: SUM %s (want %s), COUNT %s (want %d), last error %v\n%s",
			lastSum, wantSum, lastCount, sc.events, lastErr, srv.tail())
	}
	t.Logf("meters exact: SUM %s, COUNT %s; settled %s after the last ack", lastSum, lastCount, time.Since(out.res.LastAck).Round(time.Millisecond))
}

func TestKillServerSQLite(t *testing.T) {
	runScenario(t, scenario{events: 500_000, kills: []string{"abacus", "abacus", "abacus", "abacus", "abacus"}})
}

func TestKillServerPostgres(t *testing.T) {
	runScenario(t, scenario{events: 500_000, databaseURL: dbtest.NewSchema(t), kills: []string{"abacus", "abacus", "abacus", "abacus", "abacus"}})
}

func TestKillExternalNATS(t *testing.T) {
	runScenario(t, scenario{events: 500_000, withNATS: true, kills: []string{"nats", "abacus", "nats", "abacus", "nats"}})
}
