package app_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// TestEndUserInboxLiveOverTheApp: the whole program, an end user signed up
// through the public API (their access token authenticated at the HTTP
// edge, not by the inbox's own code), their inbox stream open; a tenant's
// backend sends them a notification through the API and it arrives on the
// stream live, then is in their inbox list. Another end user's stream does
// not get it.
func TestEndUserInboxLiveOverTheApp(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			eu := newEndUsers(t, a, a.key)
			pw := "quite a long passphrase 91"
			ada := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@example.com", "password": pw})
			bob := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "bob@example.com", "password": pw})
			adaID := ada["user"].(map[string]any)["id"].(string)

			stream := func(token string) (*bufio.Scanner, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/api/v1/end-user/me/notifications/stream", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set(enduser.ClientHeader, eu.clientID)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				lines := bufio.NewScanner(res.Body)
				if res.StatusCode != 200 || !lines.Scan() {
					t.Fatalf("stream: %d %q", res.StatusCode, lines.Text())
				}
				return lines, func() { cancel(); res.Body.Close() }
			}
			adaLines, stopAda := stream(ada["access_token"].(string))
			defer stopAda()
			bobLines, stopBob := stream(bob["access_token"].(string))
			defer stopBob()
			events := func(lines *bufio.Scanner) chan string {
				got := make(chan string, 4)
				go func() {
					for lines.Scan() {
						if d, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
							got <- d
						}
					}
				}()
				return got
			}
			adaGot, bobGot := events(adaLines), events(bobLines)

			r := a.do("POST", "/api/v1/notifications", a.key, map[string]any{
				"template": "notifications.digest", "channels": []string{"in_app"}, "category": "usage",
				"to":   map[string]any{"kind": "end_user", "id": adaID},
				"data": map[string]any{"category": "usage", "count": 1, "items": []any{map[string]any{"subject": "API calls at 80 %", "text": "8,000 of 10,000"}}},
			})
			if r.status != http.StatusAccepted {
				t.Fatalf("send: %d %s", r.status, r.body)
			}
			select {
			case d := <-adaGot:
				if !strings.Contains(d, "API calls at 80 %") {
					t.Fatalf("event %s", d)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("no notification on the end user's stream")
			}
			select {
			case d := <-bobGot:
				t.Fatalf("another end user's stream got %s", d)
			case <-time.After(500 * time.Millisecond):
			}
			list := eu.must(t, 200, "GET", "/api/v1/end-user/me/notifications", ada["access_token"].(string), nil)
			if items := list["data"].([]any); len(items) != 1 {
				t.Fatalf("inbox = %v", list)
			}
			if items := eu.must(t, 200, "GET", "/api/v1/end-user/me/notifications", bob["access_token"].(string), nil)["data"].([]any); len(items) != 0 {
				t.Fatalf("bob's inbox = %v", items)
			}
		})
	}
}
