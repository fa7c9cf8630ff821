package crash_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// rtFrame is the part of a realtime server frame the test reads.
type rtFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	ClientID       string `json:"client_id"`
	Seq            int64  `json:"seq"`
	Code           string `json:"code"`
	Message        string `json:"message"`
}

// TestKillRealtimeNode: two `abacus serve` processes share PostgreSQL and
// an external nats-server; a sender and a receiver are connected to node
// two, which is killed with SIGKILL while messages flow. Both reconnect to
// node one: the sender re-sends every message not yet acknowledged (same
// client_id: stored once), the receiver resumes after the last seq it
// saw. In the end the receiver has every message exactly once, in seq
// order with no gap, and every acknowledged message is among them.
// ABACUS_CRASH_RT_MESSAGES (default 300; the gateway allows a connection 50 frames a second, so 300 take ~8 s) sets how many messages are sent.
func TestKillRealtimeNode(t *testing.T) {
	total := 300
	if v, err := strconv.Atoi(os.Getenv("ABACUS_CRASH_RT_MESSAGES")); err == nil && v > 0 {
		total = v
	}
	dbURL := dbtest.NewSchema(t)
	dir := t.TempDir()
	key := newKey(t)
	np := freePort(t)
	nats := &proc{t: t, name: "nats-server", bin: natsBin, log: filepath.Join(dir, "nats.log"),
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
	node := func(name string, env ...string) (*proc, string) {
		port := freePort(t)
		p := &proc{t: t, name: name, bin: abacusBin, log: filepath.Join(dir, name+".log"),
			args: []string{"serve", "--roles", "api,realtime,outbox", "--data-dir", filepath.Join(dir, name), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
				"--database-url", dbURL, "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", np)},
			env: append([]string{"ABACUS_LOG_LEVEL=warn"}, env...)}
		p.start()
		t.Cleanup(p.stop)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		waitReady(t, p, base, 60*time.Second)
		return p, base
	}
	_, base1 := node("node1", "ABACUS_BOOTSTRAP_API_KEY="+key)
	node2, base2 := node("node2")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	api := client.New(base1, key, &http.Client{Timeout: 10 * time.Second})
	post := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		out, err := api.Do(ctx, "POST", path, "application/json", b)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		var m map[string]any
		_ = json.Unmarshal(out, &m)
		return m
	}
	conv := post("/api/v1/conversations", map[string]any{"kind": "group", "member_ids": []string{"snd", "rcv"}, "title": "crash"})["id"].(string)
	tokens := map[string]string{}
	for _, u := range []string{"snd", "rcv"} {
		tokens[u] = post("/api/v1/realtime/tokens", map[string]any{"user_id": u, "ttl_seconds": 600})["token"].(string)
	}
	dial := func(base, user, resume string) *loadgen.WSConn {
		u := base + "/api/v1/realtime/ws?token=" + url.QueryEscape(tokens[user])
		if resume != "" {
			u += "&resume=" + url.QueryEscape(resume)
		}
		for {
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			ws, err := loadgen.DialWS(dctx, &net.Dialer{}, u)
			dcancel()
			if err == nil {
				return ws
			}
			if ctx.Err() != nil {
				t.Fatalf("connecting %s to %s: %v", user, base, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	read := func(ws *loadgen.WSConn) (rtFrame, error) {
		_, p, err := ws.ReadMessage()
		if err != nil {
			return rtFrame{}, err
		}
		var f rtFrame
		if err := json.Unmarshal(p, &f); err != nil {
			t.Fatalf("frame %q: %v", p, err)
		}
		return f, nil
	}

	// The receiver: every message frame must be the next seq.
	var mu sync.Mutex
	var lastSeq int64
	seen := map[string]int{} // client_id → deliveries
	rcvDone := make(chan error, 1)
	go func() {
		base, resume := base2, ""
		for ctx.Err() == nil {
			ws := dial(base, "rcv", resume)
			for {
				f, err := read(ws)
				if err != nil {
					break // node2 died: reconnect to node1 and resume
				}
				if f.Type != "message" || f.ConversationID != conv {
					continue
				}
				mu.Lock()
				if f.Seq != lastSeq+1 {
					mu.Unlock()
					rcvDone <- fmt.Errorf("receiver got seq %d after %d (client_id %s)", f.Seq, lastSeq, f.ClientID)
					return
				}
				lastSeq = f.Seq
				seen[f.ClientID]++
				done := len(seen) == total
				mu.Unlock()
				if done {
					ws.Drop()
					rcvDone <- nil
					return
				}
			}
			ws.Drop()
			mu.Lock()
			base, resume = base1, conv+":"+strconv.FormatInt(lastSeq, 10)
			mu.Unlock()
		}
		rcvDone <- ctx.Err()
	}()

	// The sender: pipelined sends, every unacked one re-sent after a
	// reconnect; node2 is killed right after the send of a third of them.
	acked := map[string]int64{} // client_id → seq
	killed := false
	base := base2
	next := 0
	for len(acked) < total {
		if ctx.Err() != nil {
			t.Fatalf("sender: %d of %d acked when time ran out", len(acked), total)
		}
		ws := dial(base, "snd", "")
		ackCh := make(chan rtFrame, 1024)
		go func() {
			defer close(ackCh)
			for {
				f, err := read(ws)
				if err != nil {
					return
				}
				if f.Type == "ack" || f.Type == "error" {
					ackCh <- f
				}
			}
		}()
		send := func(i int) error {
			b, _ := json.Marshal(map[string]any{"type": "send", "conversation_id": conv, "client_id": "c" + strconv.Itoa(i), "text": "m" + strconv.Itoa(i)})
			return ws.WriteText(b)
		}
		broken := false
		for i := 0; i < next && !broken; i++ { // re-send what was not acked
			if _, ok := acked["c"+strconv.Itoa(i)]; !ok {
				broken = send(i) != nil
			}
		}
		tick := time.NewTicker(25 * time.Millisecond)
	conn:
		for !broken {
			select {
			case f, ok := <-ackCh:
				if !ok {
					break conn
				}
				if f.Type == "error" {
					t.Fatalf("sender got an error frame: %s %s", f.Code, f.Message)
				}
				if old, dup := acked[f.ClientID]; dup && old != f.Seq {
					t.Fatalf("%s acked as seq %d, then as %d", f.ClientID, old, f.Seq)
				}
				acked[f.ClientID] = f.Seq
				if len(acked) == total {
					break conn
				}
			case <-tick.C:
				if next < total {
					if send(next) != nil {
						broken = true
					}
					next++
					if !killed && next >= total/3 { // kill -9 with the last send in flight
						node2.kill()
						killed = true
						t.Logf("node2 killed after %d sent, %d acked", next, len(acked))
					}
				}
			case <-ctx.Done():
				break conn
			}
		}
		tick.Stop()
		ws.Drop()
		base = base1
	}
	if err := <-rcvDone; err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Fatal("node2 was never killed")
	}
	for id, seq := range acked {
		if seen[id] != 1 {
			t.Fatalf("%s (acked as seq %d) delivered %d times", id, seq, seen[id])
		}
	}
	if lastSeq != int64(total) {
		t.Fatalf("last seq %d, want %d: a message was stored twice", lastSeq, total)
	}
	t.Logf("%d messages acked and delivered exactly once in order across the kill", total)
}
