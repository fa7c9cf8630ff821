package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// TestOfflineRecipientGetsANotification: the whole program on both
// engines. An end user with no live connection is sent a message over
// the WebSocket: after realtime.offline_delay it is a notification
// (template conversation.new_messages, category messages) in their in-app
// inbox. Their preference turning messages off in the inbox drops the
// next one (the delivery says so); once connected they get messages live.
func TestOfflineRecipientGetsANotification(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, func(c *config.Config) { c.Realtime.OfflineDelay = 200 * time.Millisecond })
			eu := newEndUsers(t, a, a.key)
			ada := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@example.com", "password": "quite a long passphrase 91"})
			adaID, adaTok := ada["user"].(map[string]any)["id"].(string), ada["access_token"].(string)
			conv := a.post("/api/v1/conversations", map[string]any{"kind": "private", "member_ids": []string{adaID, "crm-42"}})["id"].(string)
			crm := wsDial(t, a, a.post("/api/v1/realtime/tokens", map[string]any{"user_id": "crm-42"})["token"].(string))

			say := func(id, text string) { // the ack and the echo of her own message
				crm.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": id, "text": text})
				for got := 0; got < 2; got++ {
					if f := crm.next(); f["type"] != "ack" && f["type"] != "message" {
						t.Fatalf("frame %v, want the ack and the echo", f)
					}
				}
			}
			say("m1", "Are you coming tonight?")
			var item map[string]any
			for deadline := time.Now().Add(60 * time.Second); item == nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no notification in the offline end user's inbox within 60s")
				}
				if items := eu.must(t, 200, "GET", "/api/v1/end-user/me/notifications", adaTok, nil)["data"].([]any); len(items) > 0 {
					item = items[0].(map[string]any)
				}
			}
			if item["template"] != "conversation.new_messages" || item["category"] != "messages" ||
				item["title"] != "New message from crm-42" || !strings.Contains(item["body"].(string), "crm-42: Are you coming tonight?") {
				t.Fatalf("inbox item %v", item)
			}

			// Messages off in the inbox: the next one is dropped, saying why.
			eu.must(t, 200, "PUT", "/api/v1/end-user/me/notification-preferences", adaTok, map[string]any{
				"preferences": []any{map[string]any{"category": "messages", "channel": "in_app", "mode": "off"}}})
			say("m2", "Hello?")
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the second message's notification was not dropped within 60s")
				}
				list := a.do("GET", "/api/v1/notifications?subject_type=conversation&subject_id="+conv, a.key, nil).json(t)["data"].([]any)
				if len(list) < 2 {
					continue
				}
				newest := list[0].(map[string]any)
				if newest["data"].(map[string]any)["text"] != "Hello?" {
					t.Fatalf("newest notification %v", newest)
				}
				var inApp map[string]any
				for _, d := range newest["deliveries"].([]any) {
					if d.(map[string]any)["channel"] == "in_app" {
						inApp = d.(map[string]any)
					}
				}
				if inApp != nil && inApp["state"] == "dropped" {
					if !strings.Contains(inApp["last_error"].(string), "turned off messages") {
						t.Fatalf("dropped delivery %v", inApp)
					}
					break
				}
			}
			if items := eu.must(t, 200, "GET", "/api/v1/end-user/me/notifications", adaTok, nil)["data"].([]any); len(items) != 1 {
				t.Fatalf("inbox %v, want the first notification only", items)
			}

			// Online, she gets the next message live.
			adaWS := wsDial(t, a, adaTok)
			crm.send(map[string]any{"type": "send", "conversation_id": conv, "client_id": "m3", "text": "There you are"})
			if f := adaWS.expect("message"); f["text"] != "There you are" {
				t.Fatalf("live message %v", f)
			}
		})
	}
}
