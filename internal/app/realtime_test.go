package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// wsClient is gorilla/websocket, a client library independent of the
// server's (coder/websocket).
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func wsDial(t *testing.T, a *testApp, token string) *wsClient {
	t.Helper()
	url := strings.Replace(a.base, "http://", "ws://", 1) + "/api/v1/realtime/ws?token=" + token
	ws, res, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	t.Cleanup(func() { ws.Close() })
	c := &wsClient{t: t, ws: ws}
	if f := c.next(); f["type"] != "ready" {
		t.Fatalf("first frame %v", f)
	}
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) next() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

func (c *wsClient) expect(typ string) map[string]any {
	c.t.Helper()
	f := c.next()
	for f["type"] == "presence" && typ != "presence" { // contacts' presence may come at any time
		f = c.next()
	}
	if f["type"] != typ {
		c.t.Fatalf("frame %v, want %s", f, typ)
	}
	return f
}

// The realtime role over the whole program: a tenant's backend mints a
// connection token and creates a private conversation through the API
// (once per pair: the second create answers the same one); an end user
// connects with their own access token, the other user with the minted
// token; they exchange messages; the history route has them.
func TestRealtimeOverTheApp(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			eu := newEndUsers(t, a, a.key)
			ada := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@example.com", "password": "quite a long passphrase 91"})
			adaID := ada["user"].(map[string]any)["id"].(string)

			tok := a.post("/api/v1/realtime/tokens", map[string]any{"user_id": "crm-42", "ttl_seconds": 60})["token"].(string)
			r := a.do("POST", "/api/v1/conversations", a.key, map[string]any{"kind": "private", "member_ids": []string{adaID, "crm-42"}})
			if r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			conv := r.json(t)["id"].(string)
			r = a.do("POST", "/api/v1/conversations", a.key, map[string]any{"kind": "private", "member_ids": []string{"crm-42", adaID}})
			if r.status != 200 || r.json(t)["id"] != conv {
				t.Fatalf("second create: %d %s", r.status, r.body)
			}
			expectProblem(t, a.do("POST", "/api/v1/conversations", a.key, map[string]any{"kind": "private", "member_ids": []string{"x"}}),
				400, "invalid_conversation")

			adaWS := wsDial(t, a, ada["access_token"].(string))
			crm := wsDial(t, a, tok)
			adaWS.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "m1", "text": "hello"})
			if f := adaWS.expect("ack"); f["seq"] != 1.0 || f["client_id"] != "m1" {
				t.Fatalf("ack %v", f)
			}
			if f := crm.expect("message"); f["sender_id"] != adaID || f["text"] != "hello" || f["seq"] != 1.0 {
				t.Fatalf("message %v", f)
			}
			crm.send(map[string]any{"type": "typing", "conversation_id": conv})
			if f := adaWS.expect("message"); f["seq"] != 1.0 { // her own, echoed
				t.Fatalf("echo %v", f)
			}
			if f := adaWS.expect("typing"); f["user_id"] != "crm-42" {
				t.Fatalf("typing %v", f)
			}
			// The backend sends as a member through the API.
			a.post("/api/v1/conversations/"+conv+"/messages", map[string]any{"sender_id": "crm-42", "client_id": "api-1", "text": "from the API"})
			if f := adaWS.expect("message"); f["seq"] != 2.0 || f["text"] != "from the API" {
				t.Fatalf("API message %v", f)
			}
			hist := a.do("GET", "/api/v1/conversations/"+conv+"/messages?after=0", a.key, nil).json(t)
			if d := hist["data"].([]any); len(d) != 2 || d[0].(map[string]any)["text"] != "hello" {
				t.Fatalf("history %v", hist)
			}
			expectProblem(t, a.do("GET", "/api/v1/conversations/"+conv+"/messages?after=x", a.key, nil), 400, "invalid_query")
		})
	}
}

// Two app processes sharing PostgreSQL and NATS: a message accepted by one
// reaches a user connected to the other.
func TestRealtimeAcrossTwoApps(t *testing.T) {
	t.Parallel()
	one := start(t, db.Postgres, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
	two := start(t, db.Postgres, func(c *config.Config) {
		c.Database.URL = one.Config.Database.URL
		c.NATS.URL = one.Bus.ClientURL()
		c.Bootstrap.APIKey = ""
	})
	conv := one.post("/api/v1/conversations", map[string]any{"kind": "group", "member_ids": []string{"u1", "u2"}, "title": "t"})["id"].(string)
	u1 := wsDial(t, one, one.post("/api/v1/realtime/tokens", map[string]any{"user_id": "u1"})["token"].(string))
	u2 := wsDial(t, two, one.post("/api/v1/realtime/tokens", map[string]any{"user_id": "u2"})["token"].(string))
	for i := range 5 {
		u1.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": string(rune('a' + i)), "text": "x"})
	}
	for i := range 5 {
		if f := u2.expect("message"); f["seq"] != float64(i+1) {
			t.Fatalf("message %v, want seq %d", f, i+1)
		}
	}
	u2.send(map[string]any{"type": "read", "conversation_id": conv, "seq": 5})
	for {
		f := u1.next()
		if f["type"] == "receipt" {
			if f["user_id"] != "u2" || f["seq"] != 5.0 {
				t.Fatalf("receipt %v", f)
			}
			break
		}
	}
}

// exerciseRealtimeEvents records the realtime module's domain events
// (for TestRecordedEventsMatchTheServedCatalog).
func exerciseRealtimeEvents(t *testing.T, a *testApp) {
	t.Helper()
	conv := a.post("/api/v1/conversations", map[string]any{"kind": "group", "member_ids": []string{"ev-1", "ev-2"}, "title": "Events"})["id"].(string)
	a.post("/api/v1/conversations/"+conv+"/members", map[string]any{"user_ids": []string{"ev-3"}})
	a.post("/api/v1/conversations/"+conv+"/messages", map[string]any{"sender_id": "ev-1", "client_id": "m1", "text": "spam"})
	a.post("/api/v1/conversations/"+conv+"/messages/1/reports", map[string]any{"reporter_id": "ev-2", "reason": "spam"})
	a.post("/api/v1/conversations/"+conv+"/messages", map[string]any{"sender_id": "ev-1", "client_id": "m2", "text": "a photo",
		"attachments": []map[string]any{{"type": "image", "url": "/api/v1/media/med_probe/content", "data": map[string]any{"media_id": "med_probe"}}}})
	if r := a.do("DELETE", "/api/v1/conversations/"+conv+"/messages/2", a.key, nil); r.status != 200 {
		t.Fatalf("delete message: %d %s", r.status, r.body)
	}
}
