package usage_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

const ce = "application/cloudevents+json"
const ceBatch = "application/cloudevents-batch+json"

func ev(id, subject, typ, tm, data string) string {
	s := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"test","type":%q,"subject":%q`, id, typ, subject)
	if tm != "" {
		s += fmt.Sprintf(`,"time":%q`, tm)
	}
	if data != "" {
		s += `,"data":` + data
	}
	return s + "}"
}

func batch(evs ...string) string { return "[" + strings.Join(evs, ",") + "]" }

// value returns the single window's value of a query, or "" when empty.
func (b *bundle) query(key, slug, params string) []any {
	b.t.Helper()
	r := b.do("GET", "/api/v1/meters/"+slug+"/query?"+params, key, "", nil)
	if r.status != http.StatusOK {
		b.t.Fatalf("query %s?%s: %d %s", slug, params, r.status, r.body)
	}
	data, _ := r.obj(b.t)["data"].([]any)
	return data
}

func (b *bundle) total(slug, params string) string {
	b.t.Helper()
	data := b.query(b.key, slug, "from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z&"+params)
	switch len(data) {
	case 0:
		return ""
	case 1:
		return fmt.Sprint(data[0].(map[string]any)["value"])
	}
	b.t.Fatalf("want one window, got %d: %v", len(data), data)
	return ""
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		meters := []map[string]any{
			{"slug": "calls", "eventType": "api", "aggregation": "COUNT"},
			{"slug": "tokens", "eventType": "api", "aggregation": "SUM", "valueProperty": "$.tokens", "groupBy": map[string]string{"model": "$.model"}},
			{"slug": "tmin", "eventType": "api", "aggregation": "MIN", "valueProperty": "$.tokens"},
			{"slug": "tmax", "eventType": "api", "aggregation": "MAX", "valueProperty": "$.tokens"},
			{"slug": "tavg", "eventType": "api", "aggregation": "AVG", "valueProperty": "$.tokens"},
			{"slug": "users", "eventType": "api", "aggregation": "UNIQUE_COUNT", "valueProperty": "$.user"},
			{"slug": "last", "eventType": "api", "aggregation": "LATEST", "valueProperty": "$.tokens"},
		}
		for _, m := range meters {
			if r := b.do("POST", "/api/v1/meters", b.key, "application/json", m); r.status != http.StatusCreated {
				t.Fatalf("create %v: %d %s", m["slug"], r.status, r.body)
			}
		}
		t.Run("meter errors", func(t *testing.T) {
			r := b.do("POST", "/api/v1/meters", b.key, "application/json", meters[0])
			if r.status != http.StatusConflict || r.obj(t)["code"] != "meter_slug_taken" {
				t.Fatalf("duplicate slug: %d %s", r.status, r.body)
			}
			r = b.do("POST", "/api/v1/meters", b.key, "application/json", map[string]any{"slug": "Bad Slug", "eventType": "x", "aggregation": "SUM"})
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"slug"`) || !strings.Contains(string(r.body), `"valueProperty"`) {
				t.Fatalf("bad meter: %d %s", r.status, r.body)
			}
			r = b.do("PUT", "/api/v1/meters/tokens", b.key, "application/json", map[string]any{"aggregation": "MAX"})
			if r.status != http.StatusConflict {
				t.Fatalf("aggregation change: %d %s", r.status, r.body)
			}
			r = b.do("PUT", "/api/v1/meters/tokens", b.key, "application/json", map[string]any{"description": "LLM tokens"})
			if r.status != http.StatusOK || r.obj(t)["description"] != "LLM tokens" {
				t.Fatalf("update: %d %s", r.status, r.body)
			}
			r = b.do("GET", "/api/v1/meters", b.key, "", nil)
			if r.status != http.StatusOK || strings.Count(string(r.body), `"slug"`) != len(meters) {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
		})

		// Two subjects, duplicates within a batch, then the whole batch again.
		events := []string{
			ev("e1", "cus_1", "api", "2026-03-10T10:00:10Z", `{"tokens":10,"model":"a","user":"u1"}`),
			ev("e2", "cus_1", "api", "2026-03-10T10:00:20Z", `{"tokens":"2.5","model":"b","user":"u2"}`),
			ev("e3", "cus_1", "api", "2026-03-10T11:30:00Z", `{"tokens":7,"model":"a","user":"u1"}`),
			ev("e1", "cus_1", "api", "2026-03-10T10:00:10Z", `{"tokens":10,"model":"a","user":"u1"}`), // repeat in batch
			ev("e4", "cus_2", "api", "2026-03-10T10:05:00Z", `{"tokens":100,"model":"a","user":"u9"}`),
			ev("e5", "cus_1", "other", "2026-03-10T10:05:00Z", `{"tokens":1000}`),
		}
		b.ingest(b.key, ceBatch, batch(events...))
		b.ingest(b.key, "application/json; charset=utf-8", batch(events...)) // a client retry
		b.ingest(b.key, ce, events[2])                                       // and a single one again
		// Without a time: server time, sent twice, counted once.
		noTime := ev("e6", "cus_1", "api", "", `{"tokens":1,"model":"a","user":"u3"}`)
		b.ingest(b.key, ce, noTime)
		b.clock.Advance(2000000000) // 2s: the retry gets another server time
		b.ingest(b.key, "application/json", noTime)

		t.Run("invalid batch is refused whole", func(t *testing.T) {
			r := b.do("POST", "/api/v1/events", b.key, ceBatch, batch(
				ev("x1", "cus_1", "api", "2026-03-10T10:00:00Z", `{"tokens":1}`),
				`{"specversion":"1.0","id":"x2","source":"s","type":"api"}`,
				ev("x3", "cus_1", "api", "not a time", `[1]`)))
			if r.status != http.StatusBadRequest {
				t.Fatalf("want 400, got %d %s", r.status, r.body)
			}
			p := r.obj(t)
			if p["code"] != "invalid_event" || !strings.Contains(r.header.Get("Content-Type"), "problem+json") {
				t.Fatalf("problem: %s", r.body)
			}
			errs := p["errors"].([]any)
			got := map[string]bool{}
			for _, e := range errs {
				m := e.(map[string]any)
				got[fmt.Sprintf("%v/%v", m["index"], m["field"])] = true
			}
			for _, want := range []string{"1/subject", "2/time", "2/data"} {
				if !got[want] {
					t.Errorf("missing error %s in %s", want, r.body)
				}
			}
			if r := b.do("POST", "/api/v1/events", b.key, "text/plain", "{}"); r.status != http.StatusUnsupportedMediaType {
				t.Errorf("content type: %d", r.status)
			}
			if r := b.do("POST", "/api/v1/events", "", ce, events[0]); r.status != http.StatusUnauthorized {
				t.Errorf("no key: %d", r.status)
			}
		})
		b.waitProcessed()

		t.Run("aggregations", func(t *testing.T) {
			// cus_1 api events: e1 10, e2 2.5, e3 7, e6 1; cus_2: e4 100.
			for _, c := range []struct{ slug, params, want string }{
				{"calls", "", "5"},
				{"calls", "subject=cus_1", "4"},
				{"tokens", "", "120.5"},
				{"tokens", "subject=cus_1&filterGroupBy%5Bmodel%5D=a", "18"},
				{"tmin", "", "1"},
				{"tmax", "", "100"},
				{"tavg", "", "24.1"},
				{"users", "", "4"},
				{"users", "subject=cus_1", "3"},
				{"last", "", "1"}, // e6 has the latest time (server time 12:00)
			} {
				if got := b.total(c.slug, c.params); got != c.want {
					t.Errorf("%s?%s = %s, want %s", c.slug, c.params, got, c.want)
				}
			}
		})
		t.Run("windows", func(t *testing.T) {
			data := b.query(b.key, "tokens", "from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z&windowSize=HOUR&groupBy=model&subject=cus_1")
			want := []string{"10:00 a 10", "10:00 b 2.5", "11:00 a 7", "12:00 a 1"}
			var got []string
			for _, w := range data {
				m := w.(map[string]any)
				got = append(got, fmt.Sprintf("%s %v %v", m["windowStart"].(string)[11:16], m["groupBy"].(map[string]any)["model"], m["value"]))
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("hour windows: %v, want %v", got, want)
			}
			// Kolkata (UTC+5:30): days start at 18:30 UTC; minute rows.
			data = b.query(b.key, "calls", "from=2026-03-09T18:30:00Z&to=2026-03-10T18:30:00Z&windowSize=DAY&windowTimeZone=Asia/Kolkata")
			if len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "5" || data[0].(map[string]any)["windowStart"] != "2026-03-09T18:30:00Z" {
				t.Errorf("Kolkata day: %v", data)
			}
			// New York day windows read hourly rows.
			data = b.query(b.key, "calls", "from=2026-03-10T04:00:00Z&to=2026-03-11T04:00:00Z&windowSize=DAY&windowTimeZone=America/New_York")
			if len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "5" {
				t.Errorf("New York day: %v", data)
			}
			data = b.query(b.key, "calls", "from=2026-03-10T10:00:00Z&to=2026-03-10T10:01:00Z&windowSize=MINUTE")
			if len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "2" {
				t.Errorf("minute: %v", data)
			}
			r := b.do("GET", "/api/v1/meters/tokens/query?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z&groupBy=model", b.key, "", nil, "Accept", "text/csv")
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
				!strings.Contains(string(r.body), "window_start,window_end,subject,model,value\n") || !strings.Contains(string(r.body), ",a,118\n") {
				t.Errorf("csv: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			r = b.do("POST", "/api/v1/meters/tokens/query", b.key, "application/json", map[string]any{
				"from": "2026-03-10T00:00:00Z", "to": "2026-03-11T00:00:00Z", "subject": []string{"cus_2"}})
			if r.status != 200 || !strings.Contains(string(r.body), `"value":100`) {
				t.Errorf("POST query: %d %s", r.status, r.body)
			}
			r = b.do("GET", "/api/v1/meters/tokens/query?windowSize=WEEK&windowTimeZone=Mars/Base&groupBy=nope", b.key, "", nil)
			if r.status != 400 || !strings.Contains(string(r.body), "windowSize") || !strings.Contains(string(r.body), "windowTimeZone") {
				t.Errorf("bad query: %d %s", r.status, r.body)
			}
		})
		t.Run("events list", func(t *testing.T) {
			r := b.do("GET", "/api/v1/events?limit=3", b.key, "", nil)
			var page1 []map[string]any
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			_ = jsonUnmarshal(r.body, &page1)
			cur := r.header.Get("Abacus-Next-Cursor")
			if len(page1) != 3 || cur == "" {
				t.Fatalf("page 1: %d events, cursor %q", len(page1), cur)
			}
			r = b.do("GET", "/api/v1/events?limit=10&cursor="+url.QueryEscape(cur), b.key, "", nil)
			var page2 []map[string]any
			_ = jsonUnmarshal(r.body, &page2)
			if len(page2) != 3 || r.header.Get("Abacus-Next-Cursor") != "" {
				t.Fatalf("page 2: %d events (stored: 6 distinct) %s", len(page2), r.body)
			}
			r = b.do("GET", "/api/v1/events?subject=cus_2", b.key, "", nil)
			if !strings.Contains(string(r.body), `"id":"e4"`) || strings.Contains(string(r.body), `"id":"e1"`) {
				t.Errorf("subject filter: %s", r.body)
			}
		})
		t.Run("rebuild equals", func(t *testing.T) {
			before := map[string]string{}
			for _, m := range meters {
				slug := m["slug"].(string)
				before[slug] = fmt.Sprint(b.query(b.key, slug, "from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z&windowSize=MINUTE&groupBy=subject"))
				r := b.do("POST", "/api/v1/meters/"+slug+"/rebuild", b.key, "", nil)
				if r.status != 200 {
					t.Fatalf("rebuild %s: %d %s", slug, r.status, r.body)
				}
			}
			b.ingest(b.key, ce, ev("e7", "cus_2", "api", "2026-03-10T10:05:00Z", `{"tokens":5,"model":"a","user":"u9"}`))
			b.waitProcessed()
			if got := b.total("calls", ""); got != "6" {
				t.Errorf("after rebuild and a new event: calls = %s, want 6", got)
			}
			for _, m := range meters {
				slug := m["slug"].(string)
				r := b.do("POST", "/api/v1/meters/"+slug+"/rebuild", b.key, "", nil)
				if r.status != 200 {
					t.Fatalf("rebuild %s: %d %s", slug, r.status, r.body)
				}
			}
			b.ingest(b.key, ce, ev("e7", "cus_2", "api", "2026-03-10T10:05:00Z", `{"tokens":5,"model":"a","user":"u9"}`)) // retry
			b.waitProcessed()
			if got := b.total("calls", ""); got != "6" {
				t.Errorf("after second rebuild and a retry: calls = %s, want 6", got)
			}
			_ = before
		})
		t.Run("tenant isolation", func(t *testing.T) {
			other := b.newTenant()
			for _, p := range []string{"/api/v1/meters/calls", "/api/v1/meters/calls/query"} {
				if r := b.do("GET", p, other, "", nil); r.status != http.StatusNotFound {
					t.Errorf("GET %s as tenant B: %d", p, r.status)
				}
			}
			if r := b.do("POST", "/api/v1/meters/calls/rebuild", other, "", nil); r.status != http.StatusNotFound {
				t.Errorf("rebuild as tenant B: %d", r.status)
			}
			if r := b.do("GET", "/api/v1/events", other, "", nil); r.status != 200 || string(r.body) != "[]\n" && string(r.body) != "[]" {
				t.Errorf("events as tenant B: %d %s", r.status, r.body)
			}
			// B's own meter with the same slug counts only B's events.
			if r := b.do("POST", "/api/v1/meters", other, "application/json", meters[0]); r.status != http.StatusCreated {
				t.Fatalf("B create: %d %s", r.status, r.body)
			}
			b.ingest(other, ce, ev("e1", "cus_1", "api", "2026-03-10T10:00:10Z", `{}`))
			b.waitProcessed()
			data := b.query(other, "calls", "from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z")
			if len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "1" {
				t.Errorf("B calls: %v", data)
			}
			if got := b.total("calls", ""); got != "6" {
				t.Errorf("A calls after B's event: %s", got)
			}
		})
	})
}
