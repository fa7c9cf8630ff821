package usage

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/metering"
)

// exampleEvent is the usage event the API reference shows.
var exampleEvent = CloudEvent{ID: "9f1c2a7e-4b3d-4c55-8a61-0d2e7f9b3c41", Source: "api-gateway", SpecVersion: "1.0", Type: "api_call",
	Subject: "acme-prod", Time: time.Date(2026, 11, 20, 14, 3, 11, 0, time.UTC), Data: json.RawMessage(`{"tokens":1280,"model":"gpt-4o","route":"/v1/chat"}`)}

// exampleSchema is the event-type JSON Schema the API reference shows.
const exampleSchema = `{"type":"object","required":["tokens"],"properties":{"tokens":{"type":"integer","minimum":0},"model":{"type":"string"}}}`

// registerExamples records the values the API reference shows for the
// metering request and response bodies; the keys are OpenMeter's.
func registerExamples(s *httpapi.Server) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	name, desc := "API tokens", "LLM tokens per customer and model"
	meter := metering.Meter{Slug: "tokens", Name: name, Description: desc, EventType: "api_call", Aggregation: metering.AggSum,
		ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}}
	record := MeterRecord{Meter: meter, ManagedBy: "api", CreatedAt: at, UpdatedAt: at}
	record.ID = "mtr_01jbx77h9k1m3p5r7t9vxz1b3d"
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	day, subject, model := metering.WindowDay, "acme-prod", "gpt-4o"
	result := &metering.QueryResult{From: from, To: to, WindowSize: &day, Data: []metering.Window{
		{WindowStart: from, WindowEnd: from.AddDate(0, 0, 1), Subject: &subject, GroupBy: map[string]*string{"model": &model}, Value: decimal.RequireFromString("182340"), Events: 211},
		{WindowStart: from.AddDate(0, 0, 1), WindowEnd: to, Subject: &subject, GroupBy: map[string]*string{"model": &model}, Value: decimal.RequireFromString("96012"), Events: 118},
	}}
	ingested := IngestedEvent{Event: exampleEvent, IngestedAt: exampleEvent.Time.Add(40 * time.Millisecond), StoredAt: exampleEvent.Time.Add(95 * time.Millisecond)}
	s.Example(
		meter, record,
		MeterUpdate{Name: &name, Description: &desc, GroupBy: map[string]string{"model": "$.model", "route": "$.route"}},
		QueryBody{From: &from, To: &to, WindowSize: string(day), WindowTimeZone: "Europe/Berlin", Subject: []string{subject}, GroupBy: []string{"model"}},
		RebuildResult{Meter: record, Events: 48213},
		ingested,
		EventsPage{Items: []IngestedEvent{ingested}, NextCursor: "MjAyNi0xMS0yMFQxNDowMzoxMVp8OWYxYzJhN2U"},
		EventType{EventType: "api_call", HasSchema: true, Meters: []string{"tokens", "api_calls"}},
		EventTypeSchema{EventType: "api_call", Schema: json.RawMessage(exampleSchema), CreatedAt: at, UpdatedAt: at},
		MeteringSettings{LateEventWindow: "2160h", Default: false},
		MeteringSettingsUpdate{LateEventWindow: "2160h"},
	)
	s.OperationExample(http.MethodGet, "/api/v1/meters/{idOrSlug}/query", nil, result)
	s.OperationExample(http.MethodPost, "/api/v1/meters/{idOrSlug}/query", nil, result)
	s.OperationExample(http.MethodPut, "/api/v1/event-types/{type}/schema", json.RawMessage(exampleSchema), nil)
}
