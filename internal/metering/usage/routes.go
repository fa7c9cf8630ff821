package usage

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/metering"
)

type idInput struct {
	IDOrSlug string `path:"idOrSlug" doc:"meter id (mtr_…) or slug"`
}

type meterOutput struct {
	Body MeterRecord
}

// queryInput takes OpenMeter's query parameters; filterGroupBy[k]=v is
// read from the raw query string.
type queryInput struct {
	IDOrSlug       string   `path:"idOrSlug" doc:"meter id (mtr_…) or slug"`
	From           string   `query:"from" doc:"start (RFC 3339), inclusive; rounded down to the minute"`
	To             string   `query:"to" doc:"end (RFC 3339), exclusive; rounded up to the minute; default now"`
	WindowSize     string   `query:"windowSize" doc:"MINUTE, HOUR, DAY or MONTH; absent: one total"`
	WindowTimeZone string   `query:"windowTimeZone" doc:"IANA time zone of window boundaries; default UTC"`
	Subject        []string `query:"subject,explode" doc:"subjects to filter and group by (repeat the parameter)"`
	GroupBy        []string `query:"groupBy,explode" doc:"groupBy names (or subject) to group by (repeat the parameter)"`
	Accept         string   `header:"Accept" doc:"text/csv for CSV"`
	filter         map[string]string
}

// ownCursor marks the routes whose cursor ListEvents decodes (not an id).
func ownCursor() map[string]any { return map[string]any{httpapi.MetaOwnCursor: true} }

// filterGroupByParam documents filterGroupBy[name]=value, which Resolve
// reads from the raw query, so the route declares every parameter it takes.
func filterGroupByParam() []*huma.Param {
	return []*huma.Param{{Name: "filterGroupBy", In: "query", Style: "deepObject", Explode: new(true),
		Description: "filterGroupBy[name]=value filters on a groupBy value",
		Schema:      &huma.Schema{Type: "object", AdditionalProperties: &huma.Schema{Type: "string"}}}}
}

func (q *queryInput) Resolve(ctx huma.Context) []error {
	u := ctx.URL()
	for k, v := range u.Query() {
		if strings.HasPrefix(k, "filterGroupBy[") && strings.HasSuffix(k, "]") && len(v) > 0 {
			if q.filter == nil {
				q.filter = map[string]string{}
			}
			q.filter[k[len("filterGroupBy["):len(k)-1]] = v[len(v)-1]
		}
	}
	return nil
}

// QueryBody is the JSON body of POST …/query.
type QueryBody struct {
	From           *time.Time        `json:"from,omitempty"`
	To             *time.Time        `json:"to,omitempty"`
	WindowSize     string            `json:"windowSize,omitempty"`
	WindowTimeZone string            `json:"windowTimeZone,omitempty"`
	Subject        []string          `json:"subject,omitempty"`
	GroupBy        []string          `json:"groupBy,omitempty"`
	FilterGroupBy  map[string]string `json:"filterGroupBy,omitempty"`
}

type queryOutput struct {
	ContentType string `header:"Content-Type"`
	Body        any
}

func parseTime(v abacus.Validation, field, s string) (*time.Time, abacus.Validation) {
	if s == "" {
		return nil, v
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.Add(field, "must be an RFC 3339 time such as 2026-01-02T00:00:00Z, got %q", s)
		return nil, v
	}
	return &t, v
}

// RegisterRoutes adds the meters, query, events-listing, event-type
// schema and metering settings routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	registerExamples(s)
	registerRuleRoutes(s, svc)
	tags := []string{"Metering"}
	httpapi.Register(s, huma.Operation{
		OperationID: "create-meter", Method: http.MethodPost, Path: "/api/v1/meters",
		Summary: "Create a meter", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Defines how events of one type turn into usage (OpenMeter-compatible). It counts events processed from now on; rebuild counts stored ones.",
	}, abacus.ScopeWrite, func(ctx context.Context, in *struct{ Body metering.Meter }) (*meterOutput, error) {
		m, err := svc.CreateMeter(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &meterOutput{Body: m}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "list-meters", Method: http.MethodGet, Path: "/api/v1/meters",
		Summary: "List meters", Tags: tags,
	}, abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*struct{ Body []MeterRecord }, error) {
		ms, err := svc.ListMeters(ctx)
		if err != nil {
			return nil, err
		}
		return &struct{ Body []MeterRecord }{Body: ms}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "get-meter", Method: http.MethodGet, Path: "/api/v1/meters/{idOrSlug}",
		Summary: "Get a meter", Tags: tags,
	}, abacus.ScopeRead, func(ctx context.Context, in *idInput) (*meterOutput, error) {
		m, err := svc.GetMeter(ctx, in.IDOrSlug)
		if err != nil {
			return nil, err
		}
		return &meterOutput{Body: m}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "update-meter", Method: http.MethodPut, Path: "/api/v1/meters/{idOrSlug}",
		Summary: "Update a meter", Tags: tags,
		Description: "Changes the given fields. The aggregation cannot change. Applies to events processed from now on; rebuild to recount stored events.",
	}, abacus.ScopeWrite, func(ctx context.Context, in *struct {
		IDOrSlug string `path:"idOrSlug"`
		Body     MeterUpdate
	}) (*meterOutput, error) {
		m, err := svc.UpdateMeter(ctx, in.IDOrSlug, in.Body)
		if err != nil {
			return nil, err
		}
		return &meterOutput{Body: m}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "delete-meter", Method: http.MethodDelete, Path: "/api/v1/meters/{idOrSlug}",
		Summary: "Delete a meter", Tags: tags, DefaultStatus: http.StatusNoContent,
	}, abacus.ScopeWrite, func(ctx context.Context, in *idInput) (*struct{}, error) {
		return nil, svc.DeleteMeter(ctx, in.IDOrSlug)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "rebuild-meter", Method: http.MethodPost, Path: "/api/v1/meters/{idOrSlug}/rebuild",
		Summary: "Rebuild a meter's usage from stored events", Tags: tags,
		Description: "Recomputes the meter's rollups from every stored event of its type, without double counting, while ingestion continues (meter workers wait for it).",
	}, abacus.ScopeAdmin, func(ctx context.Context, in *idInput) (*struct{ Body RebuildResult }, error) {
		r, err := svc.Rebuild(ctx, in.IDOrSlug)
		if err != nil {
			return nil, err
		}
		return &struct{ Body RebuildResult }{Body: r}, nil
	})
	query := func(ctx context.Context, id string, p QueryParams, accept string) (*queryOutput, error) {
		res, _, err := svc.Query(ctx, id, p)
		if err != nil {
			return nil, err
		}
		if strings.Contains(accept, "text/csv") {
			return &queryOutput{ContentType: "text/csv; charset=utf-8", Body: queryCSV(res, p.GroupBy)}, nil
		}
		return &queryOutput{ContentType: "application/json", Body: res}, nil
	}
	httpapi.Register(s, huma.Operation{
		OperationID: "query-meter", Method: http.MethodGet, Path: "/api/v1/meters/{idOrSlug}/query", Parameters: filterGroupByParam(),
		Summary: "Query a meter's usage", Tags: tags,
		Description: "OpenMeter-compatible: windows of usage per subject and groups. filterGroupBy[name]=value filters on a groupBy value. Accept: text/csv returns CSV.",
	}, abacus.ScopeRead, func(ctx context.Context, in *queryInput) (*queryOutput, error) {
		var v abacus.Validation
		var from, to *time.Time
		from, v = parseTime(v, "from", in.From)
		to, v = parseTime(v, "to", in.To)
		if err := v.Err(metering.CodeInvalidQuery); err != nil {
			return nil, err
		}
		return query(ctx, in.IDOrSlug, QueryParams{From: from, To: to, WindowSize: metering.WindowSize(in.WindowSize),
			WindowTimeZone: in.WindowTimeZone, Subject: in.Subject, GroupBy: in.GroupBy, FilterGroupBy: in.filter}, in.Accept)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "query-meter-post", Method: http.MethodPost, Path: "/api/v1/meters/{idOrSlug}/query",
		Summary: "Query a meter's usage (JSON body)", Tags: tags,
	}, abacus.ScopeRead, func(ctx context.Context, in *struct {
		IDOrSlug string `path:"idOrSlug"`
		Accept   string `header:"Accept"`
		Body     QueryBody
	}) (*queryOutput, error) {
		b := in.Body
		return query(ctx, in.IDOrSlug, QueryParams{From: b.From, To: b.To, WindowSize: metering.WindowSize(b.WindowSize),
			WindowTimeZone: b.WindowTimeZone, Subject: b.Subject, GroupBy: b.GroupBy, FilterGroupBy: b.FilterGroupBy}, in.Accept)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "list-events", Method: http.MethodGet, Path: "/api/v1/events", Metadata: ownCursor(),
		Summary: "List stored usage events", Tags: tags,
		Description: "Newest event time first. The next page's cursor is in the Abacus-Next-Cursor header (absent on the last page).",
	}, abacus.ScopeRead, func(ctx context.Context, in *struct {
		Subject string `query:"subject"`
		Type    string `query:"type"`
		From    string `query:"from" doc:"event time, inclusive (RFC 3339)"`
		To      string `query:"to" doc:"event time, exclusive (RFC 3339)"`
		Limit   int    `query:"limit" doc:"1–1000, default 100"`
		Cursor  string `query:"cursor"`
	}) (*struct {
		NextCursor string `header:"Abacus-Next-Cursor"`
		Body       []IngestedEvent
	}, error) {
		var v abacus.Validation
		var from, to *time.Time
		from, v = parseTime(v, "from", in.From)
		to, v = parseTime(v, "to", in.To)
		if err := v.Err("invalid_query"); err != nil {
			return nil, err
		}
		evs, next, err := svc.ListEvents(ctx, ListEventsParams{Subject: in.Subject, Type: in.Type, From: from, To: to, Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return &struct {
			NextCursor string `header:"Abacus-Next-Cursor"`
			Body       []IngestedEvent
		}{NextCursor: next, Body: evs}, nil
	})
}

// RegisterIngest adds POST /api/v1/events (raw hot path, scope ingest) and
// describes it in the OpenAPI document.
func RegisterIngest(s *httpapi.Server, in *Ingester) {
	s.Handle("POST /api/v1/events", abacus.ScopeIngest, in)
	schema := &huma.Schema{Type: "object", Required: []string{"id", "source", "specversion", "type", "subject"},
		Properties: map[string]*huma.Schema{
			"id": {Type: "string"}, "source": {Type: "string"}, "specversion": {Type: "string", Enum: []any{"1.0"}},
			"type": {Type: "string"}, "subject": {Type: "string"},
			"time":            {Type: "string", Format: "date-time", Description: "default: the time the server received it"},
			"datacontenttype": {Type: "string"}, "dataschema": {Type: "string"},
			"data": {Type: "object", AdditionalProperties: true},
		}}
	batch := &huma.Schema{Type: "array", Items: schema}
	s.API.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "ingest-events", Method: http.MethodPost, Path: "/api/v1/events",
		Summary: "Ingest usage events", Tags: []string{"Metering"},
		Description: "CloudEvents 1.0 (OpenMeter-compatible): application/cloudevents+json (one event), application/cloudevents-batch+json (array) " +
			"or application/json (either). 204 once every event is durable. A batch with an invalid event is refused whole (400, every index and field listed), " +
			"including data that breaks the tenant's JSON Schema for the event's type (field data/<JSON pointer>) and times older than the tenant's late-event window. " +
			"Duplicates (same source and id) are accepted and counted once. 503 with Retry-After under back-pressure: retry with the same ids.\n\nRequires scope `ingest`.",
		Security: []map[string][]string{{"bearer": {}}},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			metering.MediaTypeCloudEvent:      {Schema: schema, Example: exampleEvent},
			metering.MediaTypeCloudEventBatch: {Schema: batch, Example: []CloudEvent{exampleEvent}},
			metering.MediaTypeJSON:            {Schema: &huma.Schema{OneOf: []*huma.Schema{schema, batch}}, Example: exampleEvent},
		}},
		Responses: map[string]*huma.Response{
			"204": {Description: "every event is durable"},
			"400": {Description: "invalid events; nothing stored"},
			"413": {Description: "body or batch over the limits"},
			"503": {Description: "back-pressure; retry after Retry-After with the same ids"},
		},
	})
}

// queryCSV renders a result as CSV: window_start, window_end, subject,
// the requested groupBy names, value.
func queryCSV(res *metering.QueryResult, groupBy []string) []byte {
	var names []string
	for _, g := range groupBy {
		if g != "subject" && !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(append(append([]string{"window_start", "window_end", "subject"}, names...), "value"))
	for _, d := range res.Data {
		row := []string{d.WindowStart.Format(time.RFC3339), d.WindowEnd.Format(time.RFC3339), ""}
		if d.Subject != nil {
			row[2] = *d.Subject
		}
		for _, n := range names {
			v := ""
			if p := d.GroupBy[n]; p != nil {
				v = *p
			}
			row = append(row, v)
		}
		_ = w.Write(append(row, d.Value.String()))
	}
	w.Flush()
	return b.Bytes()
}
