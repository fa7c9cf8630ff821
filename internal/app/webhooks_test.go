package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// The webhook routes of issue 14 over real HTTP on both engines: an
// endpoint is created with its secret, a customer created through the API
// reaches it signed (verified with the Standard Webhooks library), the
// delivery log and a test-send work, and bad input names its field.
func TestWebhooksOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got []*http.Request
			var bodies [][]byte
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got, bodies = append(got, r), append(bodies, b)
				mu.Unlock()
			}))
			defer rcv.Close()
			a := start(t, engine, func(c *config.Config) { c.Webhooks.AllowPrivateTargets = true })

			expectProblem(t, a.do("POST", "/api/v1/webhook-endpoints", a.key, map[string]any{"url": "ftp://x"}), 400, "invalid_webhook_endpoint")
			r := a.do("POST", "/api/v1/webhook-endpoints", a.key, map[string]any{"url": rcv.URL, "event_types": []string{"customer.created", "customer.exploded"}})
			expectProblem(t, r, 400, "invalid_webhook_endpoint")
			if !strings.Contains(string(r.body), `"field":"event_types[1]"`) {
				t.Fatalf("unknown event type problem does not name event_types[1]: %s", r.body)
			}
			ep := a.post("/api/v1/webhook-endpoints", map[string]any{"url": rcv.URL, "event_types": []string{"customer.created"}, "description": "CRM"})
			id, secret := ep["id"].(string), ep["secret"].(string)
			if !strings.HasPrefix(secret, "whsec_") {
				t.Fatalf("create answered secret %q", secret)
			}
			if g := a.do("GET", "/api/v1/webhook-endpoints/"+id, a.key, nil); g.status != 200 || strings.Contains(string(g.body), "whsec_") {
				t.Fatalf("GET endpoint: %d %s (the secret is shown only once)", g.status, g.body)
			}
			a.post("/api/v1/customers", map[string]any{"name": "Ada", "currency": "EUR"})
			waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
			wh, _ := standardwebhooks.NewWebhook(secret)
			if err := wh.Verify(bodies[0], got[0].Header); err != nil {
				t.Fatalf("delivery does not verify: %v", err)
			}
			var p struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal(bodies[0], &p)
			if p.Type != "customer.created" || p.Data["name"] != "Ada" {
				t.Fatalf("payload %s", bodies[0])
			}
			a.do("POST", "/api/v1/webhook-endpoints/"+id+"/test", a.key, nil)
			waitUntil(t, func() bool {
				l := a.do("GET", "/api/v1/webhook-endpoints/"+id+"/deliveries?status=delivered", a.key, nil)
				var list struct {
					Data []map[string]any `json:"data"`
				}
				_ = json.Unmarshal(l.body, &list)
				return len(list.Data) == 2
			})
			types := a.do("GET", "/api/v1/webhook-event-types", a.key, nil)
			if types.status != 200 || !strings.Contains(string(types.body), `"type":"customer.created"`) || !strings.Contains(string(types.body), `"schema"`) {
				t.Fatalf("webhook-event-types: %d %.300s", types.status, types.body)
			}
			if d := a.do("DELETE", "/api/v1/webhook-endpoints/"+id, a.key, nil); d.status != 204 {
				t.Fatalf("DELETE: %d %s", d.status, d.body)
			}
			expectProblem(t, a.do("GET", "/api/v1/webhook-endpoints/"+id, a.key, nil), 404, "webhook_endpoint_not_found")
		})
	}
}

// waitUntil is waitFor with a limit for a loaded machine: a delivery
// crosses the relay, the bus, the consumer and the dispatcher.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
