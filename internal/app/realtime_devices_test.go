package app_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// wsCloseCode dials the gateway with token and returns the close code
// the server ends the connection with before any frame, or 0 when it
// sent the ready frame (the connection is then closed by the client).
func wsCloseCode(t *testing.T, a *testApp, token string) int {
	t.Helper()
	url := strings.Replace(a.base, "http://", "ws://", 1) + "/api/v1/realtime/ws?token=" + token
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return 0
}

// TestRealtimeMaxConnectedDevices: an end user whose organization's plan
// grants max_devices 2 per user has two live connections; the third is
// refused with close code 4010; once one closes, a new one is admitted.
func TestRealtimeMaxConnectedDevices(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			w := newOrgWorld(t, engine)
			w.user(t, "cid@solo.test", true)
			tok := w.mustSignIn(t, "cid@solo.test")
			solo := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tok, map[string]any{"name": "Solo"})
			w.subscribeMaxDevices(t, "solo", solo["customer_id"].(string), map[string]any{"limit": 2, "on_limit": "refuse", "per": "user"})

			one := wsDial(t, w.testApp, tok)
			_ = wsDial(t, w.testApp, tok)
			if code := wsCloseCode(t, w.testApp, tok); code != 4010 {
				t.Fatalf("third connection: close %d, want 4010", code)
			}
			// Another user of the tenant (not in the organization) is not limited.
			other := w.post("/api/v1/realtime/tokens", map[string]any{"user_id": "crm-7"})["token"].(string)
			_ = wsDial(t, w.testApp, other)

			one.ws.Close()
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				code := wsCloseCode(t, w.testApp, tok)
				if code == 0 {
					break
				}
				if code != 4010 || time.Now().After(deadline) {
					t.Fatalf("after one closed: close %d", code)
				}
			}
		})
	}
}
