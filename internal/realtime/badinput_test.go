package realtime_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// Bad input gets an error frame that says what was wrong (with the
// client_id it concerns) or a close code that does, and nobody else's
// connection notices.
func TestBadInput(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	cl := newCluster(t, d)
	n := cl.node("rt-a", nil, realtime.Config{MaxFrameBytes: 4096, RatePerSecond: 1, RateBurst: 30, RateCloseAfter: 5})
	conv := conversation(t, n.svc, realtime.KindPrivate, "ada", "bob")
	other := conversation(t, n.svc, realtime.KindPrivate, "cy", "dee")
	bob := dial(t, n, n.token(t, "bob"))

	errFrame := func(c *client, code string) frame {
		t.Helper()
		f := c.expect("error")
		if f.str("code") != code || f.str("message") == "" {
			t.Fatalf("error %v, want code %s", f, code)
		}
		return f
	}
	ada := dial(t, n, n.token(t, "ada"))
	ada.sendRaw(websocket.MessageText, []byte(`{"type":"send",`))
	errFrame(ada, "bad_frame")
	ada.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": 7, "text": "x"})
	errFrame(ada, "bad_frame")
	ada.send(map[string]any{"type": "shout", "conversation_id": conv})
	errFrame(ada, "unknown_type")
	ada.send(map[string]any{"type": "send", "conversation_id": other, "client_id": "c1", "text": "let me in"})
	if f := errFrame(ada, "not_a_member"); f.str("client_id") != "c1" {
		t.Fatalf("error without its client_id: %v", f)
	}
	ada.send(map[string]any{"type": "send", "conversation_id": "cnv_nope", "client_id": "c2", "text": "x"})
	errFrame(ada, "conversation_not_found")
	ada.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "c3", "text": ""})
	if f := errFrame(ada, "invalid_message"); !strings.Contains(f.str("message"), "text") {
		t.Fatalf("error %v does not name the field", f)
	}
	ada.send(map[string]any{"type": "resume", "conversation_id": other, "after_seq": 0})
	errFrame(ada, "not_a_member")
	ada.send(map[string]any{"type": "typing", "conversation_id": other})
	errFrame(ada, "not_a_member")
	ada.sendRaw(websocket.MessageBinary, []byte{1, 2, 3})
	errFrame(ada, "binary_not_supported")
	ada.quiet()

	// Oversized: 1009.
	big := dial(t, n, n.token(t, "ada"))
	big.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "big", "text": strings.Repeat("x", 5000)})
	if code := big.closeCode(); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: close %d, want 1009", code)
	}
	// Invalid UTF-8 in a text frame: 1007.
	bad := dial(t, n, n.token(t, "ada"))
	bad.sendRaw(websocket.MessageText, []byte("{\"type\":\"send\",\"text\":\"\xff\xfe\"}"))
	if code := bad.closeCode(); code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8: close %d, want 1007", code)
	}
	// A flood: rate_limited errors, then 4008.
	flood := dial(t, n, n.token(t, "ada"))
	for range 40 {
		b, _ := json.Marshal(map[string]any{"type": "ping"})
		if err := flood.ws.Write(t.Context(), websocket.MessageText, b); err != nil {
			break
		}
	}
	limited := 0
	for f := range flood.frames {
		if f.typ() == "error" && f.str("code") == "rate_limited" {
			limited++
		}
	}
	if code := <-flood.closed; code != realtime.CloseRateLimited || limited == 0 {
		t.Fatalf("flood: close %d after %d rate_limited errors, want 4008", code, limited)
	}

	// Tokens: expired → 4001, garbage → 4003.
	clock := abacus.NewFakeClock(time.Now())
	m := cl.node("rt-b", clock, realtime.Config{})
	tok, err := m.svc.MintToken(tenantCtx(), realtime.TokenInput{UserID: "ada", TTLSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	if code := dialRaw(t, m, tok.Token).closeCode(); code != realtime.CloseTokenExpired {
		t.Fatalf("expired token: close %d, want 4001", code)
	}
	if code := dialRaw(t, m, "garbage").closeCode(); code != realtime.CloseUnauthorized {
		t.Fatalf("bad token: close %d, want 4003", code)
	}
	forged := tok.Token[:len(tok.Token)-4] + "AAAA"
	if code := dialRaw(t, m, forged).closeCode(); code != realtime.CloseUnauthorized {
		t.Fatalf("forged token: close %d, want 4003", code)
	}

	// Bob noticed nothing and still works.
	ada.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "ok", "text": "still here"})
	ada.expect("ack")
	if f := bob.expect("message"); f.str("text") != "still here" {
		t.Fatalf("bob got %v", f)
	}
}

// A client that does not read is disconnected with 4009 once its queue is
// full, and the node goes on serving the others; shutting a node down
// closes its connections with 1012.
func TestSlowConsumerAndDrain(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	cl := newCluster(t, d)
	n := cl.node("rt-a", nil, realtime.Config{SendQueue: 8, SendQueueBytes: 1 << 20, WriteTimeout: time.Second})
	// A client that never reads.
	url := strings.Replace(n.url, "http://", "ws://", 1) + "/api/v1/realtime/ws?token=" + n.token(t, "slow")
	slow, _, err := websocket.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	fast := dial(t, n, n.token(t, "fast"))
	waitFor(t, func() bool { return len(n.svc.LocalConnections()) == 2 })
	data := json.RawMessage(`"` + strings.Repeat("x", 15000) + `"`)
	// Enough to fill the socket buffers and then the queue; the node
	// lets go of the connection (its queue never grows past 8 frames).
	for i := 0; i < 5000 && len(n.svc.LocalConnections()) == 2; i++ {
		if _, err := n.svc.PublishEvent(tenantCtx(), realtime.ServerEvent{UserIDs: []string{"slow"}, Name: "bulk", Data: data}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(time.Millisecond) // let the dispatcher run
		}
	}
	waitFor(t, func() bool { return len(n.svc.LocalConnections()) == 1 })
	if _, err := n.svc.PublishEvent(tenantCtx(), realtime.ServerEvent{UserIDs: []string{"fast"}, Name: "ping"}); err != nil {
		t.Fatal(err)
	}
	if f := fast.expect("event"); f.str("name") != "ping" {
		t.Fatalf("event %v", f)
	}
	// The slow client, reading at last, finds its connection ended (with
	// 4009 when the close frame could still be written).
	slow.SetReadLimit(1 << 20)
	for {
		if _, _, err := slow.Read(t.Context()); err != nil {
			if c := websocket.CloseStatus(err); c != -1 && c != realtime.CloseSlowConsumer {
				t.Fatalf("slow consumer: close %d, want 4009", c)
			}
			break
		}
	}

	n.svc.Drain()
	if code := fast.closeCode(); code != websocket.StatusServiceRestart {
		t.Fatalf("drain: close %d, want 1012", code)
	}
	if code := dialRaw(t, n, n.token(t, "late")).closeCode(); code != websocket.StatusServiceRestart {
		t.Fatalf("after drain: close %d, want 1012", code)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
