package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/demo"
)

// eventType is an entry of GET /api/v1/domain-event-types.
type eventType struct {
	Type      string          `json:"type"`
	Version   int             `json:"version"`
	Aggregate string          `json:"aggregate_type"`
	Schema    json.RawMessage `json:"schema"`
}

// TestRecordedEventsMatchTheServedCatalog runs the demo, then checks every
// domain event it recorded against the catalog the API serves: its type
// and version are listed, its aggregate is the listed one, and its payload
// validates against the listed schema.
func TestRecordedEventsMatchTheServedCatalog(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	if _, err := demo.Run(context.Background(), client.New(a.base, a.key, nil), demo.Options{}); err != nil {
		t.Fatal(err)
	}
	exerciseEvents(t, a)
	catalog := servedCatalog(t, a)
	seen := map[string]int{}
	rows, err := a.DB.QueryContext(context.Background(), `SELECT type, version, aggregate_type, payload FROM outbox_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, aggregate, payload string
		var version int
		if err := rows.Scan(&typ, &version, &aggregate, &payload); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s v%d", typ, version)
		seen[key]++
		c, ok := catalog[key]
		if !ok {
			t.Errorf("recorded %s is not in the served catalog", key)
			continue
		}
		if c.aggregate != aggregate {
			t.Errorf("%s recorded about a %s, the catalog says %s", key, aggregate, c.aggregate)
		}
		if err := validate(c.schema, payload); err != nil && seen[key] <= 3 {
			t.Errorf("%s payload does not match its schema: %v\n%s", key, err, payload)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("checked %v", keys)
	for key := range catalog {
		if seen[key] == 0 && !notExercised[key] {
			t.Errorf("no %s was recorded: exercise it in exerciseEvents or list it in notExercised", key)
		}
	}
}

// notExercised are the event types this test does not provoke. Their
// payload types are checked through a sibling that shares the Go type
// (subscription.*), or by their own package's tests (the threshold, the
// webhook endpoint disabled).
var notExercised = map[string]bool{
	"subscription.past_due v1":    true,
	"subscription.suspended v1":   true, // payments (dunning, disputes) records them
	"subscription.reactivated v1": true,
	// dunning's, provoked by payment failures (internal/payments/dunning tests)
	"dunning.started v1":                    true,
	"dunning.reminder v1":                   true,
	"dunning.retry_failed v1":               true,
	"dunning.payment_method_required v1":    true,
	"dunning.recovered v1":                  true,
	"dunning.exhausted v1":                  true,
	"dunning.closed v1":                     true,
	"customer.chargeback_lost v1":           true,
	"subscription.plan_change_scheduled v1": true,
	"subscription.plan_changed v1":          true,
	"subscription.quantity_changed v1":      true,
	"entitlement.threshold_reached v1":      true,
	"webhook_endpoint.disabled v1":          true, // internal/webhooks validates it against its schema
	// Gateway-driven payment events (internal/payments provokes them with
	// signed gateway callbacks and checks them against their schemas).
	"payment.failed v1": true, "payment.canceled v1": true, "payment.refunded v1": true,
	"dispute.created v1": true, "dispute.updated v1": true, "dispute.closed v1": true, "invoice.reopened v1": true,
	"payment_method.attached v1": true, "payment_method.detached v1": true, "payment_method.expiring v1": true,
	"risk.usage_anomaly v1": true, // no longer recorded: v2 since it names the customer
	"risk.usage_anomaly v2": true, // recorded by internal/risk/casework (TestUsageAnomalyRaisedOnce)
}

// exerciseEvents provokes, through the API, the events the demo does not.
func exerciseEvents(t *testing.T, a *testApp) {
	t.Helper()
	must := func(method, path string, body any) map[string]any {
		t.Helper()
		r := a.do(method, path, a.key, body)
		if r.status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
		if len(r.body) == 0 {
			return nil
		}
		return r.json(t)
	}
	ids := func(path, status string) []string {
		var out []string
		for _, o := range must(http.MethodGet, path, nil)["data"].([]any) {
			m := o.(map[string]any)
			if status == "" || m["status"] == status {
				out = append(out, m["id"].(string))
			}
		}
		return out
	}
	cus := must(http.MethodPost, "/api/v1/customers", map[string]any{"name": "Events", "currency": "EUR"})["id"].(string)
	must(http.MethodPatch, "/api/v1/customers/"+cus, map[string]any{"name": "Events renamed"})
	must(http.MethodPost, "/api/v1/coupons", map[string]any{"code": "EVENTS10", "percent_off": "10", "duration": "once"})
	must(http.MethodPost, "/api/v1/coupons/EVENTS10/redemptions", map[string]any{"customer_id": cus})
	must(http.MethodPost, "/api/v1/customers/"+cus+"/archive", nil)
	must(http.MethodPatch, "/api/v1/features/"+ids("/api/v1/features?limit=1", "")[0], map[string]any{"name": "Renamed"})
	plan := must(http.MethodPost, "/api/v1/plans", map[string]any{"key": "events", "name": "Events"})["id"].(string)
	must(http.MethodPost, "/api/v1/plans/"+plan+"/versions", map[string]any{"currency": "EUR",
		"billing_interval": map[string]any{"unit": "month", "count": 1}, "charges": []any{}})
	must(http.MethodPost, "/api/v1/plans/"+plan+"/versions/1/publish", nil)
	must(http.MethodPost, "/api/v1/plans/"+plan+"/versions/1/archive", nil)
	open := ids("/api/v1/invoices?limit=100", "open")
	if len(open) < 3 {
		t.Fatalf("the demo left %d open invoices, want 3", len(open))
	}
	must(http.MethodPost, "/api/v1/payments", map[string]any{"invoice_id": open[0], "amount": "0.01", "reference": "events"})
	must(http.MethodPost, "/api/v1/invoices/"+open[0]+"/mark-paid", nil)
	must(http.MethodPost, "/api/v1/invoices/"+open[1]+"/void", nil)
	must(http.MethodPost, "/api/v1/invoices/"+open[2]+"/mark-uncollectible", nil)
	must(http.MethodPost, "/api/v1/credit-notes", map[string]any{"invoice_id": open[0], "amount": "0.01"})
	active := ids("/api/v1/subscriptions?limit=100", "active")
	must(http.MethodPost, "/api/v1/subscriptions/"+active[0]+"/pause", map[string]any{})
	must(http.MethodPost, "/api/v1/subscriptions/"+active[0]+"/resume", map[string]any{})
	must(http.MethodPost, "/api/v1/subscriptions/"+active[1]+"/cancel", map[string]any{"when": "now"})
	key := must(http.MethodPost, "/api/v1/api-keys", map[string]any{"name": "events", "scopes": []string{"read"}})["id"].(string)
	must(http.MethodDelete, "/api/v1/api-keys/"+key, nil)
	must(http.MethodPost, "/api/v1/meters", map[string]any{"slug": "event_probe", "eventType": "probe", "aggregation": "COUNT"})
	exerciseEndUserEvents(t, a)
	must(http.MethodPut, "/api/v1/meters/event_probe", map[string]any{"name": "Probe"})
	must(http.MethodDelete, "/api/v1/meters/event_probe", nil)
	if r := a.do(http.MethodPost, "/api/v1/auth/signup", "", map[string]any{"email": "events@example.com",
		"password": "a long enough passphrase 42", "organization": "Events Org"}); r.status != http.StatusCreated {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	exerciseOrgEvents(t, a)
	exerciseRealtimeEvents(t, a)
	exerciseMediaEvents(t, a) // media_test.go
	// document.received: a supplier invoice received through the API.
	ubl, err := os.ReadFile(filepath.Join("..", "document", "testdata", "examples", "invoice-saas-de.xml"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, a.base+"/api/v1/documents/inbound", bytes.NewReader(ubl))
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/xml")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("receive a document: %d", res.StatusCode)
	}
}

type compiledType struct {
	aggregate string
	schema    *jsonschema.Schema
}

func servedCatalog(t *testing.T, a *testApp) map[string]compiledType {
	t.Helper()
	r := a.do(http.MethodGet, "/api/v1/domain-event-types", a.key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list domain event types: %d %s", r.status, r.body)
	}
	var page struct {
		Data       []eventType `json:"data"`
		NextCursor *string     `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || page.NextCursor == nil {
		t.Fatalf("list shape: %v %s", err, r.body)
	}
	checkCompatible(t, page.Data)
	out := map[string]compiledType{}
	for _, et := range page.Data {
		c := jsonschema.NewCompiler()
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(et.Schema))
		if err != nil {
			t.Fatalf("%s schema: %v", et.Type, err)
		}
		url := fmt.Sprintf("urn:abacus:event:%s:%d", et.Type, et.Version)
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s schema does not compile: %v", et.Type, err)
		}
		out[fmt.Sprintf("%s v%d", et.Type, et.Version)] = compiledType{aggregate: et.Aggregate, schema: s}
	}
	if validate(out["invoice.finalized v1"].schema, `{"id":"inv_1"}`) == nil {
		t.Fatal("the invoice.finalized schema accepts a payload without its fields")
	}
	one := a.do(http.MethodGet, "/api/v1/domain-event-types/invoice.finalized", a.key, nil)
	if one.status != http.StatusOK || !bytes.Contains(one.body, []byte(`"type":"invoice.finalized"`)) {
		t.Fatalf("get one type: %d %s", one.status, one.body)
	}
	if miss := a.do(http.MethodGet, "/api/v1/domain-event-types/invoice.vanished", a.key, nil); miss.status != http.StatusNotFound {
		t.Fatalf("unknown type: %d %s", miss.status, miss.body)
	}
	return out
}

func validate(s *jsonschema.Schema, payload string) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(payload)))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// eventSchemasFile holds the schema of every published event type version.
// A consumer written against it keeps working as long as each version only
// grows: a property removed or retyped, or a version dropped, is breaking
// and needs a new version instead. ABACUS_UPDATE_EVENT_SCHEMAS=1 rewrites
// the file after an additive change or a new version.
const eventSchemasFile = "testdata/domain_event_types.json"

func checkCompatible(t *testing.T, served []eventType) {
	t.Helper()
	now := map[string]json.RawMessage{}
	for _, et := range served {
		now[fmt.Sprintf("%s v%d", et.Type, et.Version)] = et.Schema
	}
	if os.Getenv("ABACUS_UPDATE_EVENT_SCHEMAS") == "1" {
		b, _ := json.MarshalIndent(now, "", "  ")
		if err := os.WriteFile(eventSchemasFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(eventSchemasFile)
	if err != nil {
		t.Fatalf("%v (write it with ABACUS_UPDATE_EVENT_SCHEMAS=1)", err)
	}
	var before map[string]any
	if err := json.Unmarshal(b, &before); err != nil {
		t.Fatal(err)
	}
	for key, old := range before {
		cur, ok := now[key]
		if !ok {
			t.Errorf("event type %s is no longer defined: a published version is never removed", key)
			continue
		}
		var c any
		_ = json.Unmarshal(cur, &c)
		for _, p := range breaking(old, c, "") {
			t.Errorf("%s: %s; define a new version instead (outbox.Define with version+1)", key, p)
		}
	}
}

// breaking lists the changes from schema old to cur a consumer of old could
// trip on: a property gone, or a type changed.
func breaking(old, cur any, at string) []string {
	o, _ := old.(map[string]any)
	c, _ := cur.(map[string]any)
	if o == nil {
		return nil
	}
	if c == nil {
		return []string{at + " is gone"}
	}
	var out []string
	if fmt.Sprint(o["type"]) != fmt.Sprint(c["type"]) || fmt.Sprint(o["$ref"]) != fmt.Sprint(c["$ref"]) {
		out = append(out, fmt.Sprintf("%s changed type from %v%v to %v%v", at, o["type"], o["$ref"], c["type"], c["$ref"]))
	}
	for _, kw := range []string{"properties", "$defs"} {
		op, _ := o[kw].(map[string]any)
		cp, _ := c[kw].(map[string]any)
		for name, sub := range op {
			out = append(out, breaking(sub, cp[name], at+"/"+kw+"/"+name)...)
		}
	}
	out = append(out, breaking(o["items"], c["items"], at+"/items")...)
	return out
}
