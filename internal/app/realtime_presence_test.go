package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
)

// Presence across two app processes sharing PostgreSQL and NATS: ann
// comes online on one and her contact ben, on two, is told, while cat,
// who shares no conversation with her, is not; the staff routes of either
// node see her connection on the other; she goes offline when her last
// connection closes; the metrics count it.
func TestRealtimePresenceAcrossTwoApps(t *testing.T) {
	t.Parallel()
	one := start(t, db.Postgres, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
	two := start(t, db.Postgres, func(c *config.Config) {
		c.Database.URL = one.Config.Database.URL
		c.NATS.URL = one.Bus.ClientURL()
		c.Bootstrap.APIKey = ""
	})
	token := func(user string) string {
		return one.post("/api/v1/realtime/tokens", map[string]any{"user_id": user})["token"].(string)
	}
	one.post("/api/v1/conversations", map[string]any{"kind": "group", "member_ids": []string{"ann", "ben"}, "title": "t"})
	catConv := one.post("/api/v1/conversations", map[string]any{"kind": "private", "member_ids": []string{"cat", "dan"}})["id"].(string)
	ben := wsDial(t, two, token("ben"))
	cat := wsDial(t, two, token("cat"))
	ann := wsDial(t, one, token("ann"))

	if f := ben.expect("presence"); f["user_id"] != "ann" || f["status"] != "online" {
		t.Fatalf("ben got %v", f)
	}
	// cat's next frame is dan's message, not ann's presence.
	one.post("/api/v1/conversations/"+catConv+"/messages", map[string]any{"sender_id": "dan", "client_id": "d1", "text": "hi"})
	if f := cat.next(); f["type"] != "message" {
		t.Fatalf("cat got %v before dan's message", f)
	}

	p := two.do("GET", "/api/v1/realtime/presence?user_id=ann,eve", one.key, nil).json(t)
	d := p["data"].([]any)
	if len(d) != 2 || d[0].(map[string]any)["online"] != true || d[0].(map[string]any)["devices"] != 1.0 || d[1].(map[string]any)["online"] != false {
		t.Fatalf("presence %v", p)
	}
	expectProblem(t, two.do("GET", "/api/v1/realtime/presence", one.key, nil), 400, "invalid_query")
	expectProblem(t, two.do("GET", "/api/v1/realtime/connections", one.key, nil), 400, "invalid_query")
	cs := two.do("GET", "/api/v1/realtime/connections?user_id=ann", one.key, nil).json(t)["data"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["node"] == "" || !strings.Contains(cs[0].(map[string]any)["user_agent"].(string), "Go") {
		t.Fatalf("ann's connections seen from node two: %v", cs)
	}

	ann.ws.Close()
	if f := ben.expect("presence"); f["user_id"] != "ann" || f["status"] != "offline" {
		t.Fatalf("ben got %v", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := string(one.do("GET", "/metrics", "", nil).body)
		if strings.Contains(m, "abacus_realtime_connects_total{node=") && strings.Contains(m, `abacus_realtime_disconnects_total{code=`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no realtime metrics on node one's /metrics")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
