package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// BenchmarkRiskEvents measures POST /api/v1/risk/events through the whole
// server (middleware, risk with the link graph, lists, score and review
// cases attached, group commit into SQLite) from parallel callers, with
// the 10 counters and 20 active rules of scripts/bench-risk.sh; the events
// spread over 1,000 customers, devices and cards. Without TCP: its
// cpu-µs/op is the server's whole CPU per decision.
//
//	go test ./internal/app -run '^$' -bench RiskEvents -benchtime 20000x -cpuprofile cpu.out
func BenchmarkRiskEvents(b *testing.B) {
	h, key := startRiskBench(b)
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer() // B/op and ns/op count the requests, not the server's start
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			n := int(seq.Add(1))
			req := riskEventRequest("/api/v1/risk/events", key, n)
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// BenchmarkRiskEdge is what the HTTP edge costs per request: the risk
// event of BenchmarkRiskEvents answered by a bare handler (read the body,
// write a fixed decision) called directly, and by the same handler
// behind the server's middleware (request id, API-key lookup, metrics,
// access log, body limit, idempotency check, routing, scope check). The
// difference is the edge's own cost.
func BenchmarkRiskEdge(b *testing.B) {
	h, key := startRiskBench(b)
	answer := []byte(`{"id":"rdec_01","event_id":"rev_01","decision":"allow","score":2,"reasons":[],"default":true}`)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpapi.ReadBody(r); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		_, _ = w.Write(answer)
	})
	srv := riskBenchApp.HTTP
	srv.Handle("POST /api/v1/bench/bare", abacus.ScopeWrite, bare)
	for _, c := range []struct {
		name, path string
		h          http.Handler
	}{{"bare", "/api/v1/bench/bare", bare}, {"edge", "/api/v1/bench/bare", h}} {
		b.Run(c.name, func(b *testing.B) {
			var seq atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					req := riskEventRequest(c.path, key, int(seq.Add(1)))
					clear(w.h)
					w.status = 0
					c.h.ServeHTTP(w, req)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
		})
	}
}

// riskBenchApp is the app startRiskBench started last.
var riskBenchApp *app.App

// startRiskBench starts a whole server with the counters and active rules
// of scripts/bench-risk.sh and returns its handler and admin key.
func startRiskBench(b *testing.B) (http.Handler, string) {
	b.Helper()
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "bench", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		b.Fatalf("start: %v", err)
	}
	b.Cleanup(func() { _ = a.Stop(context.Background()) })
	riskBenchApp = a
	h := a.HTTP.Handler()
	key := a.BootstrapKey
	post := func(path string, body []byte) (int, []byte) {
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		out, _ := io.ReadAll(w.Result().Body)
		return w.Code, out
	}
	for _, c := range riskBenchCounters {
		if st, out := post("/api/v1/risk/counters", []byte(c)); st != http.StatusCreated {
			b.Fatalf("counter: %d %s", st, out)
		}
	}
	for i, r := range riskBenchRules {
		st, out := post("/api/v1/risk/rules", fmt.Appendf(nil, `{"name":"bench rule %d","action":%q,"logic":%s}`, i, r[0], r[1]))
		if st != http.StatusCreated {
			b.Fatalf("rule: %d %s", st, out)
		}
		var rule struct{ ID string }
		_ = json.Unmarshal(out, &rule)
		if st, out := post("/api/v1/risk/rules/"+rule.ID+"/activate", nil); st != http.StatusOK {
			b.Fatalf("activate: %d %s", st, out)
		}
	}
	return h, key
}

// riskEventRequest is request n: an order event of one of 1,000
// customers, devices and cards, posted to path.
func riskEventRequest(path, key string, n int) *http.Request {
	body := fmt.Appendf(nil, `{"type":"order","customer_id":"crm-%d","device_id":"dev-%d","ip":"203.0.%d.%d","email":"u%d@example.com","card_fingerprint":"fp_%d","card_bin":"424242","card_last4":"4242","shipping_address":{"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},"amount":"249.00","currency":"EUR","properties":{"items":3}}`,
		n%1000, n%997, n%250/100, n%100, n%1000, n%991)
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return req
}

var riskBenchCounters = []string{
	`{"name":"cards_per_device_10m","key":"device_id","op":"distinct","of":"card_fingerprint","window":"10m","event_types":["payment"]}`,
	`{"name":"events_per_ip_1h","key":"ip","op":"count","window":"1h"}`,
	`{"name":"amount_per_customer_7d","key":"customer_id","op":"sum","of":"amount","window":"7d"}`,
	`{"name":"devices_per_customer_1d","key":"customer_id","op":"distinct","of":"device_id","window":"1d"}`,
	`{"name":"ips_per_customer_1d","key":"customer_id","op":"distinct","of":"ip","window":"1d"}`,
	`{"name":"emails_per_device_1d","key":"device_id","op":"distinct","of":"email","window":"1d"}`,
	`{"name":"payments_per_card_1h","key":"card_fingerprint","op":"count","window":"1h","event_types":["payment"]}`,
	`{"name":"failed_logins_per_ip_10m","key":"ip","op":"count","window":"10m","event_types":["login"]}`,
	`{"name":"orders_per_domain_1d","key":"email_domain","op":"count","window":"1d","event_types":["order"]}`,
	`{"name":"amount_per_card_1d","key":"card_fingerprint","op":"sum","of":"amount","window":"1d"}`,
}

var riskBenchRules = [][2]string{
	{"block", `{">":[{"var":"counters.cards_per_device_10m"},1000000]}`},
	{"block", `{">":[{"var":"counters.events_per_ip_1h"},1000000000]}`},
	{"review", `{">":[{"var":"counters.amount_per_customer_7d"},1e15]}`},
	{"review", `{"and":[{">=":[{"var":"counters.devices_per_customer_1d"},5]},{">":[{"var":"event.amount"},500]}]}`},
	{"block", `{">=":[{"var":"counters.ips_per_customer_1d"},20]}`},
	{"review", `{">=":[{"var":"counters.emails_per_device_1d"},10]}`},
	{"block", `{">":[{"var":"counters.payments_per_card_1h"},1e12]}`},
	{"block", `{">":[{"var":"counters.failed_logins_per_ip_10m"},50]}`},
	{"review", `{">":[{"var":"counters.orders_per_domain_1d"},1e12]}`},
	{"review", `{">":[{"var":"counters.amount_per_card_1d"},1e15]}`},
	{"block", `{"in":[{"var":"event.email_domain"},["mailinator.com","guerrillamail.com","10minutemail.com"]]}`},
	{"review", `{"and":[{"==":[{"var":"event.type"},"order"]},{">":[{"var":"event.amount"},10000]}]}`},
	{"block", `{"==":[{"var":"event.card_bin"},"999999"]}`},
	{"review", `{"and":[{"var":"event.shipping_country"},{"!=":[{"var":"event.shipping_country"},{"var":["event.properties.billing_country","DE"]}]}]}`},
	{"block", `{">":[{"var":"graph.linked_labelled_fraud"},0]}`},
	{"review", `{">":[{"var":"graph.component_size"},1000]}`},
	{"review", `{">=":[{"var":"score"},90]}`},
	{"allow", `{"in":[{"var":"event.customer_id"},["vip-1","vip-2"]]}`},
	{"review", `{"and":[{"missing":["event.device_id"]},{">":[{"var":"event.amount"},100]}]}`},
	{"block", `{"<":[{"var":"event.amount"},0]}`},
}
