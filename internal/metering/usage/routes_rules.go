package usage

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type eventTypeInput struct {
	Type string `path:"type" doc:"the CloudEvents type, as events carry it"`
}

// registerRuleRoutes adds the event-type schema, metering settings and
// v2 event listing routes.
func registerRuleRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Metering"}
	httpapi.Register(s, huma.Operation{
		OperationID: "list-event-types", Method: http.MethodGet, Path: "/api/v1/event-types",
		Summary: "List event types", Tags: tags,
		Description: "Event types that have a JSON Schema or a meter, with the meters counting each.",
	}, abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[EventType]], error) {
		ts, err := svc.ListEventTypes(ctx)
		return httpapi.Reply(abacus.ListOf(ts, ""), err)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "put-event-type-schema", Method: http.MethodPut, Path: "/api/v1/event-types/{type}/schema",
		Summary: "Set an event type's JSON Schema", Tags: tags,
		Description: "The body is a JSON Schema (draft 2020-12 unless $schema names another; formats are asserted; no external $ref) " +
			"for the `data` of events of this type. Ingestion refuses a batch with any event whose data breaks it (400 invalid_event, " +
			"each problem as index and field `data/<JSON pointer>`). Applies to events ingested from now on, on other ingest nodes within a second. " +
			"A document that is not a usable schema is refused with 400 invalid_event_schema naming each problem.",
	}, abacus.ScopeWrite, func(ctx context.Context, in *struct {
		Type    string `path:"type"`
		RawBody []byte `contentType:"application/schema+json"`
	}) (*struct{ Body EventTypeSchema }, error) {
		r, err := svc.PutSchema(ctx, in.Type, in.RawBody)
		if err != nil {
			return nil, err
		}
		return &struct{ Body EventTypeSchema }{Body: r}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "get-event-type-schema", Method: http.MethodGet, Path: "/api/v1/event-types/{type}/schema",
		Summary: "Get an event type's JSON Schema", Tags: tags,
	}, abacus.ScopeRead, func(ctx context.Context, in *eventTypeInput) (*struct{ Body EventTypeSchema }, error) {
		r, err := svc.GetSchema(ctx, in.Type)
		if err != nil {
			return nil, err
		}
		return &struct{ Body EventTypeSchema }{Body: r}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "delete-event-type-schema", Method: http.MethodDelete, Path: "/api/v1/event-types/{type}/schema",
		Summary: "Remove an event type's JSON Schema", Tags: tags, DefaultStatus: http.StatusNoContent,
	}, abacus.ScopeWrite, func(ctx context.Context, in *eventTypeInput) (*struct{}, error) {
		return nil, svc.DeleteSchema(ctx, in.Type)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "get-metering-settings", Method: http.MethodGet, Path: "/api/v1/settings/metering",
		Summary: "Get the tenant's metering settings", Tags: tags,
	}, abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*struct{ Body MeteringSettings }, error) {
		r, err := svc.GetSettings(ctx)
		if err != nil {
			return nil, err
		}
		return &struct{ Body MeteringSettings }{Body: r}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "put-metering-settings", Method: http.MethodPut, Path: "/api/v1/settings/metering",
		Summary: "Change the tenant's metering settings", Tags: tags,
		Description: "lateEventWindow: how old an event's time may be when ingested (1h to 8784h; empty returns to the server default). " +
			"Duplicates are recognised across any window: dedup keys are never purged.",
	}, abacus.ScopeAdmin, func(ctx context.Context, in *struct{ Body MeteringSettingsUpdate }) (*struct{ Body MeteringSettings }, error) {
		r, err := svc.PutSettings(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &struct{ Body MeteringSettings }{Body: r}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "list-events-v2", Method: http.MethodGet, Path: "/api/v2/events", Metadata: ownCursor(),
		Summary: "List stored usage events (OpenMeter v2 shape)", Tags: tags,
		Description: "Newest event time first, as GET /api/v1/events, answered as {items, nextCursor}. filter is a JSON object " +
			`such as {"subject":{"$eq":"c1"},"type":{"$eq":"api"},"time":{"$gte":"2026-01-01T00:00:00Z","$lt":"2026-02-01T00:00:00Z"}}; ` +
			"only these fields and operators are supported (others: 400 invalid_filter).",
	}, abacus.ScopeRead, func(ctx context.Context, in *struct {
		Cursor   string `query:"cursor"`
		Limit    int    `query:"limit" doc:"1–1000, default 100"`
		ClientID string `query:"clientId" doc:"accepted for compatibility; ignored"`
		Filter   string `query:"filter" doc:"JSON filter (see description)"`
	}) (*struct{ Body EventsPage }, error) {
		p, err := parseV2Filter(in.Filter)
		if err != nil {
			return nil, err
		}
		p.Limit, p.Cursor = in.Limit, in.Cursor
		evs, next, err := svc.ListEvents(ctx, p)
		if err != nil {
			return nil, err
		}
		return &struct{ Body EventsPage }{Body: EventsPage{Items: evs, NextCursor: next}}, nil
	})
}

// EventsPage is OpenMeter's cursor-paginated event list.
type EventsPage struct {
	Items      []IngestedEvent `json:"items"`
	NextCursor string          `json:"nextCursor,omitempty"`
}

// v2Filter is the subset of OpenMeter's v2 event filter that the event
// listing can answer.
type v2Filter struct {
	Subject *struct {
		Eq string `json:"$eq"`
	} `json:"subject"`
	Type *struct {
		Eq string `json:"$eq"`
	} `json:"type"`
	Time *struct {
		Gte *time.Time `json:"$gte"`
		Lt  *time.Time `json:"$lt"`
	} `json:"time"`
}

func parseV2Filter(raw string) (ListEventsParams, error) {
	var p ListEventsParams
	if raw == "" {
		return p, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var f v2Filter
	if err := dec.Decode(&f); err != nil {
		return p, abacus.Invalid("invalid_filter",
			`filter must be a JSON object using subject.$eq, type.$eq, time.$gte and time.$lt (RFC 3339); %v`, err).
			WithField("query.filter", err.Error())
	}
	if f.Subject != nil {
		p.Subject = f.Subject.Eq
	}
	if f.Type != nil {
		p.Type = f.Type.Eq
	}
	if f.Time != nil {
		p.From, p.To = f.Time.Gte, f.Time.Lt
	}
	if p.From != nil && p.To != nil && !p.From.Before(*p.To) {
		return p, abacus.Invalid("invalid_filter", "filter time.$gte must be before time.$lt").WithField("query.filter", "empty time range")
	}
	return p, nil
}
