package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Messages are metered through Abacus's own metering (one usage event per
// accepted message, subject the sender), and a plan feature caps them per
// period: the customer owning the sender's id has a plan allowing 3
// messages; its entitlement counts the 3 sent over the WebSocket; then a
// send is refused with an error frame message_quota_exceeded, while a
// user billed to no customer still sends.
func TestRealtimeMessagesMeteredAndCapped(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			post := a.post
			post("/api/v1/meters", map[string]any{"slug": "messages", "eventType": "realtime.message", "aggregation": "COUNT"})
			post("/api/v1/features", map[string]any{"key": "realtime_messages", "name": "Messages", "kind": "metered",
				"meter_slug": "messages", "limit": "3", "enforcement": "hard"})
			pid := post("/api/v1/plans", map[string]any{"key": "chat", "name": "Chat"})["id"].(string)
			v := post("/api/v1/plans/"+pid+"/versions", map[string]any{
				"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"entitlements": []any{map[string]any{"feature": "realtime_messages"}},
				"charges":      []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "5.00"}}},
			})
			post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
			cid := post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR", "subjects": []string{"crm-1"}})["id"].(string)
			post("/api/v1/subscriptions", map[string]any{"customer_id": cid, "plan_id": pid})
			conv := post("/api/v1/conversations", map[string]any{"kind": "private", "member_ids": []string{"crm-1", "crm-2"}})["id"].(string)
			one := wsDial(t, a, post("/api/v1/realtime/tokens", map[string]any{"user_id": "crm-1"})["token"].(string))
			two := wsDial(t, a, post("/api/v1/realtime/tokens", map[string]any{"user_id": "crm-2"})["token"].(string))

			for i := range 3 {
				one.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": fmt.Sprint("m", i), "text": "hi"})
				one.expect("ack")
				one.expect("message")
			}
			waitFor(t, func() bool {
				e := a.do("GET", "/api/v1/customers/"+cid+"/entitlements/realtime_messages", a.key, nil).json(t)
				return e["used"] == "3" && e["has_access"] == false
			})
			// The gateway's answer per sender lives a second: sends go
			// through until it has read the cap.
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; ; i++ {
				id := fmt.Sprint("over-", i)
				one.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": id, "text": "one more"})
				f := one.next()
				for f["type"] == "presence" || f["type"] == "message" {
					f = one.next()
				}
				if f["type"] == "error" {
					if f["code"] != "message_quota_exceeded" || f["client_id"] != id || f["message"] == "" {
						t.Fatalf("error frame %v", f)
					}
					break
				}
				if f["type"] != "ack" || time.Now().After(deadline) {
					t.Fatalf("frame %v: no message_quota_exceeded within 10 s", f)
				}
				time.Sleep(100 * time.Millisecond)
			}
			two.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "b1", "text": "not capped"})
			f := two.next()
			for f["type"] == "presence" || f["type"] == "message" { // crm-1's messages
				f = two.next()
			}
			if f["type"] != "ack" || f["client_id"] != "b1" {
				t.Fatalf("crm-2's send: %v", f)
			}
		})
	}
}
