package crash_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Risk counters and the link graph survive kill -9 (issue 18): a real
// `abacus serve` is killed twice while four clients send risk events;
// after each restart the counters and the graph are rebuilt from the
// stored events. Every acknowledged event must be counted, none twice: a
// request cut by the kill may or may not have been stored, so the sum
// counter (event n carries amount n) must exceed the acknowledged amounts
// by exactly a subset of the unanswered ones. Each event names a new
// customer on its sender's device, so the graph must link exactly as many
// customers to each device as the counters counted events on it.
func TestKillRiskCountersSQLite(t *testing.T) { runRiskKill(t, "") }

func TestKillRiskCountersPostgres(t *testing.T) { runRiskKill(t, dbtest.NewSchema(t)) }

func runRiskKill(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	key := newKey(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port)}
	if databaseURL != "" {
		args = append(args, "--database-url", databaseURL)
	}
	srv := &proc{t: t, name: "abacus", bin: abacusBin, args: args, log: filepath.Join(dir, "abacus.log"),
		env: []string{"ABACUS_BOOTSTRAP_API_KEY=" + key, "ABACUS_LOG_LEVEL=warn"}}
	srv.start()
	t.Cleanup(srv.stop)
	waitReady(t, srv, base, 60*time.Second)

	hc := &http.Client{Timeout: 5 * time.Second}
	post := func(path string, body any) (int, []byte, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		return res.StatusCode, out, err
	}
	for _, c := range []map[string]any{
		{"name": "events_1h", "key": "device_id", "op": "count", "window": "1h"},
		{"name": "amount_1h", "key": "device_id", "op": "sum", "of": "amount", "window": "1h"},
	} {
		if st, b, err := post("/api/v1/risk/counters", c); err != nil || st != 201 {
			t.Fatalf("creating a counter: %d %s %v", st, b, err)
		}
	}

	const senders, perSender = 4, 400
	var mu sync.Mutex
	var acked, unanswered []int // amounts
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				n := s*perSender + i + 1
				ev := map[string]any{"type": "payment", "customer_id": fmt.Sprintf("g-%d", n),
					"device_id": fmt.Sprintf("dev-%d", s), "amount": fmt.Sprintf("%d.00", n), "currency": "EUR"}
				st, _, err := post("/api/v1/risk/events", ev)
				for errors.Is(err, syscall.ECONNREFUSED) {
					// Nothing was sent: the server is down. Send it again.
					time.Sleep(20 * time.Millisecond)
					st, _, err = post("/api/v1/risk/events", ev)
				}
				mu.Lock()
				switch {
				case err == nil && st == 200:
					acked = append(acked, n)
				case err != nil || st >= 500:
					unanswered = append(unanswered, n)
				default:
					mu.Unlock()
					t.Errorf("event %d refused: %d", n, st)
					return
				}
				mu.Unlock()
			}
		})
	}
	for _, at := range []int{senders * perSender / 3, 2 * senders * perSender / 3} {
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d acknowledged risk events", at), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= at
		})
		srv.kill()
		t.Logf("kill -9 at %d acknowledged risk events", at)
		srv.start()
		waitReady(t, srv, base, 60*time.Second)
	}
	wg.Wait()
	srv.kill()
	srv.start()
	waitReady(t, srv, base, 60*time.Second)

	// A question per device (counted as if it happened, stored as
	// nothing) reads the rebuilt counters and graph: its own amount is 0
	// and its customer is new.
	count, sum := 0, 0
	for s := range senders {
		st, body, err := post("/api/v1/risk/decisions", map[string]any{"type": "payment", "customer_id": fmt.Sprintf("probe-%d", s),
			"device_id": fmt.Sprintf("dev-%d", s), "amount": "0", "currency": "EUR"})
		if err != nil || st != 200 {
			t.Fatalf("question after the kills: %d %s %v\n%s", st, body, err, srv.tail())
		}
		var d struct {
			Features struct {
				Counters map[string]float64 `json:"counters"`
				Graph    struct {
					LinkedAccounts int `json:"linked_accounts"`
				} `json:"graph"`
			} `json:"features"`
		}
		_ = json.Unmarshal(body, &d)
		c := int(d.Features.Counters["events_1h"]) - 1
		if d.Features.Graph.LinkedAccounts != c {
			t.Errorf("dev-%d after kill -9: the graph links %d customers, the counters counted %d events (each a new customer)",
				s, d.Features.Graph.LinkedAccounts, c)
		}
		count += c
		sum += int(d.Features.Counters["amount_1h"])
	}
	ackedSum := 0
	for _, n := range acked {
		ackedSum += n
	}
	t.Logf("%d acknowledged, %d unanswered; counters and graph: %d events, amount %d (acknowledged %d)", len(acked), len(unanswered), count, sum, ackedSum)
	if len(unanswered) > 20 {
		t.Fatalf("%d requests unanswered: more than the kills can explain", len(unanswered))
	}
	extraCount, extraSum := count-len(acked), sum-ackedSum
	found := false
	for mask := 0; mask < 1<<len(unanswered) && !found; mask++ {
		c, s := 0, 0
		for i, n := range unanswered {
			if mask&(1<<i) != 0 {
				c++
				s += n
			}
		}
		found = c == extraCount && s == extraSum
	}
	if !found {
		t.Fatalf("counters after kill -9: %d events and amount %d; acknowledged %d events, amount %d; the rest (%d, %d) is no subset of the unanswered %v",
			count, sum, len(acked), ackedSum, extraCount, extraSum, unanswered)
	}
}
