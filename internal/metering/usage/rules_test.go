package usage_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// setupRules is setup with the ingester checking tenants' rules (schemas,
// late-event windows) through the service's cache, as the app wires it.
func setupRules(t *testing.T, d *db.DB) *bundle {
	t.Helper()
	return setup(t, d, options{rules: true})
}

// problemFields returns a problem's errors as "index/field" (or "field").
func problemFields(t *testing.T, r resp) map[string]string {
	t.Helper()
	if !strings.Contains(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("not problem+json (%d): %s", r.status, r.body)
	}
	out := map[string]string{}
	errs, _ := r.obj(t)["errors"].([]any)
	for _, e := range errs {
		m := e.(map[string]any)
		k := fmt.Sprint(m["field"])
		if i, ok := m["index"]; ok {
			k = fmt.Sprintf("%v/%v", i, m["field"])
		}
		out[k] = fmt.Sprint(m["message"])
	}
	return out
}

func (b *bundle) keyWith(scopes ...abacus.Scope) string {
	b.t.Helper()
	pctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: b.tenant, Kind: "api_key", ID: "test", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	_, key, err := b.id.CreateAPIKey(pctx, identity.NewKeyInput{Name: "scoped", Scopes: scopes})
	if err != nil {
		b.t.Fatal(err)
	}
	return key
}

const tokenSchema = `{"type":"object","required":["tokens","model"],"properties":{"tokens":{"type":"integer","minimum":0},"model":{"enum":["a","b"]}}}`

func TestEventTypeSchemas(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setupRules(t, d)
		other := b.newTenant()
		if r := b.do("POST", "/api/v1/meters", b.key, "application/json",
			map[string]any{"slug": "tokens", "eventType": "llm", "aggregation": "SUM", "valueProperty": "$.tokens"}); r.status != http.StatusCreated {
			t.Fatalf("meter: %d %s", r.status, r.body)
		}

		t.Run("an unusable schema is refused, naming the problem", func(t *testing.T) {
			for doc, field := range map[string]string{
				`{"type":"objekt"}`:                    "schema/type",
				`{"properties":{"n":{"minimum":"x"}}}`: "schema/properties/n/minimum",
				`{"$ref":"file:///etc/passwd"}`:        "schema",
				`{"type":`:                             "schema",
				`[1,2]`:                                "schema",
			} {
				r := b.do("PUT", "/api/v1/event-types/llm/schema", b.key, "application/json", doc)
				if r.status != http.StatusBadRequest || r.obj(t)["code"] != "invalid_event_schema" {
					t.Fatalf("%s: %d %s", doc, r.status, r.body)
				}
				if _, ok := problemFields(t, r)[field]; !ok {
					t.Errorf("%s: no error for %s in %s", doc, field, r.body)
				}
			}
			if r := b.do("GET", "/api/v1/event-types/llm/schema", b.key, "", nil); r.status != http.StatusNotFound || r.obj(t)["code"] != "event_type_schema_not_found" {
				t.Fatalf("nothing stored: %d %s", r.status, r.body)
			}
		})

		r := b.do("PUT", "/api/v1/event-types/llm/schema", b.key, "application/schema+json", tokenSchema)
		if r.status != http.StatusOK || r.obj(t)["eventType"] != "llm" {
			t.Fatalf("put schema: %d %s", r.status, r.body)
		}
		r = b.do("GET", "/api/v1/event-types/llm/schema", b.key, "", nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"minimum":0`) {
			t.Fatalf("get schema: %d %s", r.status, r.body)
		}
		r = b.do("GET", "/api/v1/event-types", b.key, "", nil)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `{"data":[{"eventType":"llm","hasSchema":true,"meters":["tokens"]}],"next_cursor":""}`) {
			t.Fatalf("list event types: %d %s", r.status, r.body)
		}

		t.Run("a batch with events breaking the schema is refused whole", func(t *testing.T) {
			r := b.do("POST", "/api/v1/events", b.key, ceBatch, batch(
				ev("s1", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":-1,"model":"a"}`),
				ev("s2", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":5,"model":"a"}`),
				ev("s3", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":1.5}`),
				ev("s4", "c1", "llm", "2026-03-10T10:00:00Z", ""),
				`{"specversion":"1.0","id":"s5","source":"s","type":"llm","data":{"tokens":1,"model":"b"}}`,
				ev("s6", "c1", "untyped", "2026-03-10T10:00:00Z", `{"anything":true}`)))
			if r.status != http.StatusBadRequest || r.obj(t)["code"] != "invalid_event" {
				t.Fatalf("want 400 invalid_event, got %d %s", r.status, r.body)
			}
			got := problemFields(t, r)
			for _, want := range []string{"0/data/tokens", "2/data/tokens", "2/data", "3/data", "4/subject"} {
				if _, ok := got[want]; !ok {
					t.Errorf("missing %s in %s", want, r.body)
				}
			}
			if len(got) != 5 {
				t.Errorf("want exactly 5 problems, got %v", got)
			}
			if !strings.Contains(got["2/data"], "missing property 'model'") {
				t.Errorf("2/data: %q", got["2/data"])
			}
		})

		// Valid events pass; another tenant's events of the same type are
		// not checked against this tenant's schema.
		b.ingest(b.key, ceBatch, batch(
			ev("v1", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":5,"model":"a"}`),
			ev("v2", "c1", "llm", "2026-03-10T10:01:00Z", `{"tokens":7,"model":"b","extra":[1]}`)))
		b.ingest(other, ce, ev("o1", "c1", "llm", "2026-03-10T10:00:00Z", `{"tokens":-100}`))
		b.waitProcessed()
		if got := b.total("tokens", ""); got != "12" {
			t.Fatalf("tokens = %q, want 12 (nothing of the refused batch counted)", got)
		}
		r = b.do("GET", "/api/v1/events?limit=1000", b.key, "", nil)
		if n := strings.Count(string(r.body), `"specversion"`); n != 2 {
			t.Fatalf("stored events of tenant A: %d, want 2: %s", n, r.body)
		}

		t.Run("tenant isolation", func(t *testing.T) {
			if r := b.do("GET", "/api/v1/event-types/llm/schema", other, "", nil); r.status != http.StatusNotFound {
				t.Fatalf("other tenant reads the schema: %d %s", r.status, r.body)
			}
			if r := b.do("DELETE", "/api/v1/event-types/llm/schema", other, "", nil); r.status != http.StatusNotFound {
				t.Fatalf("other tenant deletes the schema: %d %s", r.status, r.body)
			}
			if r := b.do("GET", "/api/v1/event-types", other, "", nil); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"data":[],"next_cursor":""}` {
				t.Fatalf("other tenant's event types: %d %s", r.status, r.body)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			read := b.keyWith(abacus.ScopeRead)
			if r := b.do("PUT", "/api/v1/event-types/x/schema", read, "application/json", `{}`); r.status != http.StatusForbidden {
				t.Fatalf("read key puts a schema: %d %s", r.status, r.body)
			}
			if r := b.do("GET", "/api/v1/event-types/llm/schema", read, "", nil); r.status != http.StatusOK {
				t.Fatalf("read key gets a schema: %d %s", r.status, r.body)
			}
		})

		t.Run("at most 100 schemas per tenant", func(t *testing.T) {
			for i := 1; i < metering.MaxSchemasPerTenant; i++ { // llm is the first
				if r := b.do("PUT", fmt.Sprintf("/api/v1/event-types/t%d/schema", i), b.key, "application/json", `{"type":"object"}`); r.status != http.StatusOK {
					t.Fatalf("schema %d: %d %s", i, r.status, r.body)
				}
			}
			r := b.do("PUT", "/api/v1/event-types/one-more/schema", b.key, "application/json", `{"type":"object"}`)
			if r.status != http.StatusConflict || r.obj(t)["code"] != "too_many_event_schemas" {
				t.Fatalf("schema 101: %d %s", r.status, r.body)
			}
			// Replacing an existing one is still fine.
			if r := b.do("PUT", "/api/v1/event-types/t1/schema", b.key, "application/json", `{"type":"array"}`); r.status != http.StatusOK {
				t.Fatalf("replace: %d %s", r.status, r.body)
			}
		})

		// Deleted: the same data is accepted again.
		if r := b.do("DELETE", "/api/v1/event-types/llm/schema", b.key, "", nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := b.do("DELETE", "/api/v1/event-types/llm/schema", b.key, "", nil); r.status != http.StatusNotFound {
			t.Fatalf("delete twice: %d %s", r.status, r.body)
		}
		b.ingest(b.key, ce, ev("v3", "c1", "llm", "2026-03-10T10:02:00Z", `{"tokens":-2}`))
		b.waitProcessed()
		if got := b.total("tokens", ""); got != "10" {
			t.Fatalf("tokens = %q, want 10", got)
		}
	})
}

// A change made by another process reaches this process's cache through
// the rules version within the poll interval.
func TestRulesFollowOtherProcesses(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: b.tenant, Kind: "api_key", ID: "t", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		remote := usage.NewRules(d, slog.New(slog.DiscardHandler))
		remote.PollInterval = 10 * time.Millisecond
		wctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go remote.Watch(wctx)
		remote.MaxTenants = 2 // bounded: a third tenant starts the cache over
		for _, tenant := range []string{"ten_x", "ten_y", b.tenant} {
			if tr, err := remote.For(ctx, tenant); err != nil || tr != nil {
				t.Fatalf("rules of %s before any change: %+v, %v", tenant, tr, err)
			}
		}
		tr, err := remote.For(ctx, b.tenant)
		if err != nil || tr != nil {
			t.Fatalf("rules before any change: %+v, %v", tr, err)
		}
		if _, err := b.svc.PutSchema(ctx, "llm", []byte(tokenSchema)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.PutSettings(ctx, usage.MeteringSettingsUpdate{LateEventWindow: "2160h"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			tr, err = remote.For(ctx, b.tenant)
			if err != nil {
				t.Fatal(err)
			}
			if tr != nil && tr.Schemas["llm"] != nil && tr.LateWindow == 90*24*time.Hour {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the other process's cache still has %+v", tr)
			}
			time.Sleep(5 * time.Millisecond) // polling a real background loop
		}
	})
}

func TestMeteringSettingsLateWindow(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setupRules(t, d)
		other := b.newTenant()
		if r := b.do("POST", "/api/v1/meters", b.key, "application/json",
			map[string]any{"slug": "calls", "eventType": "api", "aggregation": "COUNT"}); r.status != http.StatusCreated {
			t.Fatalf("meter: %d %s", r.status, r.body)
		}
		r := b.do("GET", "/api/v1/settings/metering", b.key, "", nil)
		if r.status != http.StatusOK || r.obj(t)["lateEventWindow"] != "840h" || r.obj(t)["default"] != true {
			t.Fatalf("default settings: %d %s", r.status, r.body)
		}
		old := testNow.Add(-60 * 24 * time.Hour).Format(time.RFC3339) // 60 days: outside the default 35
		oldEvent := ev("late-1", "c1", "api", old, `{}`)
		r = b.do("POST", "/api/v1/events", b.key, ce, oldEvent)
		if r.status != http.StatusBadRequest || !strings.Contains(problemFields(t, r)["0/time"], "35 days") {
			t.Fatalf("60-day-old event with the default window: %d %s", r.status, r.body)
		}

		for _, bad := range []string{"10m", "9000h", "soon", "1h0.5s"} {
			r := b.do("PUT", "/api/v1/settings/metering", b.key, "application/json", map[string]any{"lateEventWindow": bad})
			if r.status != http.StatusBadRequest || r.obj(t)["code"] != "invalid_metering_settings" {
				t.Fatalf("window %s: %d %s", bad, r.status, r.body)
			}
			if _, ok := problemFields(t, r)["lateEventWindow"]; !ok {
				t.Fatalf("window %s: no field error: %s", bad, r.body)
			}
		}
		write := b.keyWith(abacus.ScopeWrite)
		if r := b.do("PUT", "/api/v1/settings/metering", write, "application/json", map[string]any{"lateEventWindow": "2160h"}); r.status != http.StatusForbidden {
			t.Fatalf("write key changes settings: %d %s", r.status, r.body)
		}
		r = b.do("PUT", "/api/v1/settings/metering", b.key, "application/json", map[string]any{"lateEventWindow": "2160h"})
		if r.status != http.StatusOK || r.obj(t)["lateEventWindow"] != "2160h" || r.obj(t)["default"] != false {
			t.Fatalf("put settings: %d %s", r.status, r.body)
		}
		b.ingest(b.key, ce, oldEvent)
		// Another tenant keeps the default window.
		if r := b.do("GET", "/api/v1/settings/metering", other, "", nil); r.obj(t)["lateEventWindow"] != "840h" || r.obj(t)["default"] != true {
			t.Fatalf("other tenant's settings: %d %s", r.status, r.body)
		}
		r = b.do("POST", "/api/v1/events", other, ce, oldEvent)
		if r.status != http.StatusBadRequest {
			t.Fatalf("other tenant's 60-day-old event: %d %s", r.status, r.body)
		}
		// Dedup holds across the window: the same event re-sent 20 days
		// later (now 80 days old, still inside 90) is not counted again.
		b.waitProcessed()
		b.clock.Advance(20 * 24 * time.Hour)
		b.ingest(b.key, ce, oldEvent)
		b.ingest(b.key, ce, ev("late-2", "c1", "api", old, `{}`))
		b.waitProcessed()
		data := b.query(b.key, "calls", url.Values{"from": {testNow.Add(-61 * 24 * time.Hour).Format(time.RFC3339)},
			"to": {testNow.Add(-59 * 24 * time.Hour).Format(time.RFC3339)}}.Encode())
		if len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "2" {
			t.Fatalf("want 2 events counted once each, got %v", data)
		}
		// A query without from reaches back over the tenant's window, not
		// the configured default: the 60-day-old events are in the total.
		if data := b.query(b.key, "calls", ""); len(data) != 1 || fmt.Sprint(data[0].(map[string]any)["value"]) != "2" {
			t.Fatalf("query without from: want the 2 old events, got %v", data)
		}
		// Back to the default.
		r = b.do("PUT", "/api/v1/settings/metering", b.key, "application/json", map[string]any{"lateEventWindow": ""})
		if r.status != http.StatusOK || r.obj(t)["default"] != true {
			t.Fatalf("reset settings: %d %s", r.status, r.body)
		}
		if r := b.do("POST", "/api/v1/events", b.key, ce, ev("late-3", "c1", "api", old, `{}`)); r.status != http.StatusBadRequest {
			t.Fatalf("after reset: %d %s", r.status, r.body)
		}
	})
}

func TestStaticMeters(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		ctx := context.Background()
		apiMade := b.do("POST", "/api/v1/meters", b.key, "application/json", map[string]any{"slug": "taken", "eventType": "api", "aggregation": "COUNT"})
		if apiMade.status != http.StatusCreated {
			t.Fatalf("meter: %d %s", apiMade.status, apiMade.body)
		}
		static := []metering.Meter{
			{Slug: "calls", Name: "Calls", EventType: "api", Aggregation: metering.AggCount},
			{Slug: "tokens", EventType: "api", Aggregation: metering.AggSum, ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}},
			{Slug: "taken", Description: "now from config", EventType: "api", Aggregation: metering.AggCount},
		}
		res, err := b.svc.ApplyStaticMeters(ctx, b.tenant, static)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.Created, res.Updated, len(res.Unchanged)) != "[calls tokens] [taken] 0" {
			t.Fatalf("first apply: %+v", res)
		}
		res, err = b.svc.ApplyStaticMeters(ctx, b.tenant, static)
		if err != nil || len(res.Unchanged) != 3 || len(res.Created)+len(res.Updated)+len(res.Released) != 0 {
			t.Fatalf("second apply is not a no-op: %+v %v", res, err)
		}
		r := b.do("GET", "/api/v1/meters/tokens", b.key, "", nil)
		if r.status != http.StatusOK || r.obj(t)["managedBy"] != "config" {
			t.Fatalf("get static meter: %d %s", r.status, r.body)
		}
		for _, m := range []string{"PUT", "DELETE"} {
			r := b.do(m, "/api/v1/meters/tokens", b.key, "application/json", map[string]any{"name": "x"})
			if r.status != http.StatusConflict || r.obj(t)["code"] != "meter_managed_in_config" ||
				!strings.Contains(r.header.Get("Content-Type"), "problem+json") || !strings.Contains(string(r.body), "metering.meters") {
				t.Fatalf("%s static meter: %d %s", m, r.status, r.body)
			}
		}
		b.ingest(b.key, ceBatch, batch(ev("e1", "c1", "api", "2026-03-10T10:00:00Z", `{"tokens":3,"model":"a"}`),
			ev("e2", "c1", "api", "2026-03-10T10:00:00Z", `{"tokens":4,"model":"b"}`)))
		b.waitProcessed()
		if got := b.total("tokens", ""); got != "7" {
			t.Fatalf("tokens = %q", got)
		}
		if got := b.total("taken", ""); got != "2" {
			t.Fatalf("taken = %q", got)
		}

		// Aggregation changes are refused with the key path.
		bad := append([]metering.Meter{}, static...)
		bad[1].Aggregation = metering.AggMax
		_, err = b.svc.ApplyStaticMeters(ctx, b.tenant, bad)
		if e, ok := abacus.AsError(err); !ok || e.Code != "meter_aggregation_immutable" || len(e.Fields) != 1 || e.Fields[0].Field != "metering.meters[1].aggregation" {
			t.Fatalf("aggregation change: %v", err)
		}
		_, err = b.svc.ApplyStaticMeters(ctx, b.tenant, []metering.Meter{{Slug: "Bad", EventType: "x", Aggregation: "SUM"}, {Slug: "calls", EventType: "api", Aggregation: metering.AggCount}, {Slug: "calls", EventType: "api", Aggregation: metering.AggCount}})
		e, ok := abacus.AsError(err)
		if !ok || e.Code != "invalid_meter" {
			t.Fatalf("invalid list: %v", err)
		}
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
		}
		sort.Strings(fields)
		if strings.Join(fields, ",") != "metering.meters[0].slug,metering.meters[0].valueProperty,metering.meters[2].slug" {
			t.Fatalf("invalid list fields: %v", fields)
		}
		if _, err := b.svc.ApplyStaticMeters(ctx, "ten_nope", static); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("unknown tenant: %v", err)
		}

		// A changed definition is updated; dropped meters are released and
		// become API meters again.
		static[0].Description = "all calls"
		res, err = b.svc.ApplyStaticMeters(ctx, b.tenant, static[:1])
		if err != nil || fmt.Sprint(res.Updated, res.Released) != "[calls] [taken tokens]" && fmt.Sprint(res.Updated, res.Released) != "[calls] [tokens taken]" {
			t.Fatalf("shrinking apply: %+v %v", res, err)
		}
		if r := b.do("GET", "/api/v1/meters/calls", b.key, "", nil); r.obj(t)["description"] != "all calls" {
			t.Fatalf("updated static meter: %s", r.body)
		}
		if r := b.do("DELETE", "/api/v1/meters/tokens", b.key, "", nil); r.status != http.StatusNoContent {
			t.Fatalf("released meter cannot be deleted: %d %s", r.status, r.body)
		}
		// Static meters belong to one tenant only.
		other := b.newTenant()
		if r := b.do("GET", "/api/v1/meters/calls", other, "", nil); r.status != http.StatusNotFound {
			t.Fatalf("other tenant sees the static meter: %d %s", r.status, r.body)
		}
		if tenant, err := usage.DefaultTenant(ctx, d); err != nil || tenant != b.tenant {
			t.Fatalf("default tenant %q, %v; want %s", tenant, err, b.tenant)
		}
	})
}

func TestListEventsV2(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		other := b.newTenant()
		b.ingest(b.key, ceBatch, batch(
			ev("a1", "c1", "api", "2026-03-10T10:00:00Z", `{"n":1}`),
			ev("a2", "c2", "api", "2026-03-10T10:01:00Z", `{"n":2}`),
			ev("a3", "c1", "other", "2026-03-10T10:02:00Z", `{"n":3}`)))
		b.ingest(other, ce, ev("b1", "c1", "api", "2026-03-10T10:03:00Z", `{}`))
		b.waitProcessed()
		type page struct {
			Items []struct {
				Event struct{ ID, Subject, Type string } `json:"event"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		get := func(q url.Values) page {
			t.Helper()
			r := b.do("GET", "/api/v2/events?"+q.Encode(), b.key, "", nil)
			if r.status != http.StatusOK {
				t.Fatalf("v2 %s: %d %s", q.Encode(), r.status, r.body)
			}
			var p page
			if err := jsonUnmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		var ids []string
		q := url.Values{"limit": {"2"}}
		for range 3 {
			p := get(q)
			for _, it := range p.Items {
				ids = append(ids, it.Event.ID)
			}
			if p.NextCursor == "" {
				break
			}
			q.Set("cursor", p.NextCursor)
		}
		if strings.Join(ids, ",") != "a3,a2,a1" {
			t.Fatalf("pages: %v", ids)
		}
		p := get(url.Values{"filter": {`{"subject":{"$eq":"c1"},"time":{"$gte":"2026-03-10T09:00:00Z","$lt":"2026-03-10T10:02:00Z"}}`}})
		if len(p.Items) != 1 || p.Items[0].Event.ID != "a1" || p.NextCursor != "" {
			t.Fatalf("filtered: %+v", p)
		}
		p = get(url.Values{"filter": {`{"type":{"$eq":"other"}}`}})
		if len(p.Items) != 1 || p.Items[0].Event.ID != "a3" {
			t.Fatalf("by type: %+v", p)
		}
		for _, f := range []string{`{"subject":{"$like":"c%"}}`, `{"customerId":{"$eq":"x"}}`, `not json`} {
			r := b.do("GET", "/api/v2/events?"+url.Values{"filter": {f}}.Encode(), b.key, "", nil)
			if r.status != http.StatusBadRequest || r.obj(t)["code"] != "invalid_filter" {
				t.Fatalf("filter %s: %d %s", f, r.status, r.body)
			}
		}
		if r := b.do("GET", "/api/v2/events?limit=5000", b.key, "", nil); r.status != http.StatusBadRequest {
			t.Fatalf("limit: %d %s", r.status, r.body)
		}
	})
}
