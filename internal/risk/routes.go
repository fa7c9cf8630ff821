package risk

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Answer is what POST /risk/events and /risk/decisions answer: one
// decision for one event, a page of decisions (`{data, next_cursor: ""}`)
// for a batch.
type Answer struct {
	One   *Decision
	Batch []*Decision
}

// MarshalJSON writes the decision or the page.
func (a Answer) MarshalJSON() ([]byte, error) {
	if a.Batch != nil {
		return json.Marshal(abacus.ListOf(a.Batch, ""))
	}
	return json.Marshal(a.One)
}

// Schema documents Answer as one of its two shapes.
func (Answer) Schema(r huma.Registry) *huma.Schema {
	one := r.Schema(reflectType[Decision](), true, "RiskDecision")
	page := r.Schema(reflectType[abacus.List[*Decision]](), true, "RiskDecisionPage")
	return &huma.Schema{OneOf: []*huma.Schema{one, page}}
}

// IDPath is the {id} path parameter.
type IDPath struct {
	ID string `path:"id" doc:"id"`
}

// ListQuery pages a list.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

type eventsBody struct {
	RawBody []byte `contentType:"application/json"`
}

// RegisterRoutes adds the risk routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	s.OperationExample(http.MethodPost, "/api/v1/risk/events", exampleEventInput(), nil)
	s.OperationExample(http.MethodPost, "/api/v1/risk/decisions", exampleEventInput(), nil)
	s.OperationExample(http.MethodPut, "/api/v1/risk/event-schemas/{type}", json.RawMessage(exampleSchema), nil)
	s.OperationExample(http.MethodGet, "/api/v1/risk/event-schemas/{type}", nil, json.RawMessage(exampleSchema))
	tags := []string{"Risk"}
	reg := s.API.OpenAPI().Components.Schemas
	one := reg.Schema(reflectType[EventInput](), true, "RiskEventInput")
	// The body is validated by the risk module against the built-in and
	// the tenant's JSON Schemas (every problem named), not by huma.
	requestBody := func() *huma.RequestBody {
		return &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"application/json": {
			Schema: &huma.Schema{OneOf: []*huma.Schema{one, {Type: "array", Items: one, MaxItems: ptr(MaxBatch)}}}}}}
	}
	// Every risk event of the tenant's product comes through here: a raw
	// handler reads the body once and answers with one encoding, without
	// huma's reflection-based decoding and encoding per request (wire.go).
	send := huma.Operation{OperationID: "send-risk-events", Method: http.MethodPost, Path: "/api/v1/risk/events",
		Summary: "Send risk events and get decisions", Tags: tags, RequestBody: requestBody(),
		Description: "One event (a JSON object) answers its decision; a batch (an array, at most 500) answers `{data: [decisions], next_cursor: \"\"}` in order. " +
			"Each event is checked against the built-in schema of its type and your own (PUT /api/v1/risk/event-schemas/{type}); a body with any bad event is refused whole " +
			"(400 invalid_risk_event, every problem with its field and, in a batch, index) and nothing is stored. Personal identifiers are stored as keyed hashes. " +
			"The events are stored with their decisions before the answer; counters count them from then on."}
	log := s.Logger()
	httpapi.HandleOp[Answer](s, send, abacus.ScopeWrite, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := answerEncoders.Get().(*answerEncoder)
		defer enc.release()
		out, err := sendEvents(r, &send, svc, enc)
		if err != nil {
			httpapi.WriteOpError(w, r, log, err)
			return
		}
		httpapi.WriteJSON(w, out)
	}))
	httpapi.Register(s, huma.Operation{OperationID: "ask-risk-decision", Method: http.MethodPost, Path: "/api/v1/risk/decisions",
		Summary: "Ask for a decision without sending an event", Tags: tags, RequestBody: requestBody(), SkipValidateBody: true,
		Description: "Decides as POST /api/v1/risk/events would, counters as if the event were counted, but stores no event and counts nothing: " +
			"a pure question. The decision itself is kept (GET /api/v1/risk/decisions/{id})."},
		abacus.ScopeRead, func(ctx context.Context, in *eventsBody) (*httpapi.Body[Answer], error) {
			ds, batch, err := svc.Decide(ctx, in.RawBody, false)
			return answer(ds, batch, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-decisions", Method: http.MethodGet, Path: "/api/v1/risk/decisions",
		Summary: "List risk decisions", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Decision string `query:"decision" enum:"allow,review,block" doc:"only decisions of this kind"`
			Customer string `query:"customer_id" maxLength:"255" doc:"only decisions of events (and questions) naming this customer_id (your own id of the customer, as events send it)"`
		}) (*httpapi.Body[abacus.List[*Decision]], error) {
			return httpapi.Reply(svc.ListDecisions(ctx, DecisionFilter{Decision: in.Decision, Customer: in.Customer}, in.Cursor, in.Limit))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-decision", Method: http.MethodGet, Path: "/api/v1/risk/decisions/{id}",
		Summary: "Explain a risk decision", Tags: tags,
		Description: "The decision with everything it was based on: the event as evaluated, the features, every rule version evaluated, shadow results and rule errors."},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[*Decision], error) {
			return httpapi.Reply(svc.GetDecision(ctx, in.ID))
		})
	registerRuleRoutes(s, svc, tags)
	registerConfigRoutes(s, svc, tags)
	registerBacktestRoute(s, svc, tags)
}

func ptr[T any](v T) *T { return &v }

// answerEncoder writes answers into a buffer reused from request to
// request: json.Marshal's bytes (go-json's Encoder sets the same options)
// without the copy Marshal returns, ~1 KB per event.
type answerEncoder struct {
	buf bytes.Buffer
	enc *gojson.Encoder
}

var answerEncoders = sync.Pool{New: func() any {
	a := &answerEncoder{}
	a.enc = gojson.NewEncoder(&a.buf)
	return a
}}

// encode returns v's JSON, valid until the encoder is released.
func (a *answerEncoder) encode(v any) ([]byte, error) {
	a.buf.Reset()
	if err := a.enc.Encode(v); err != nil {
		return nil, err
	}
	out := a.buf.Bytes()
	return out[:len(out)-1], nil // Encode ends with a newline
}

// release returns a to the pool, unless a batch's answer grew its buffer
// past 64 KiB.
func (a *answerEncoder) release() {
	if a.buf.Cap() <= 64<<10 {
		answerEncoders.Put(a)
	}
}

// sendEvents reads, decides and stores the events of a POST /risk/events
// and returns the answer's JSON, written by enc. The body is checked as
// Register's routes check theirs (media type, UTF-8, keys given once), by
// httpapi only when plainJSON is not sure.
func sendEvents(r *http.Request, op *huma.Operation, svc *Service, enc *answerEncoder) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if err := httpapi.CheckMediaType(op, ct); err != nil {
			return nil, err
		}
	}
	body, err := httpapi.ReadBody(r)
	if err != nil {
		return nil, err
	}
	if !plainJSON(body) {
		if err := httpapi.CheckJSON(body); err != nil {
			return nil, err
		}
	}
	ds, batch, err := svc.Decide(r.Context(), body, true)
	if err != nil {
		return nil, err
	}
	if batch {
		return enc.encode(abacus.ListOf(ds, ""))
	}
	return enc.encode(ds[0])
}

func answer(ds []*Decision, batch bool, err error) (*httpapi.Body[Answer], error) {
	if err != nil {
		return nil, err
	}
	if batch {
		return &httpapi.Body[Answer]{Body: Answer{Batch: ds}}, nil
	}
	return &httpapi.Body[Answer]{Body: Answer{One: ds[0]}}, nil
}

func registerRuleRoutes(s *httpapi.Server, svc *Service, tags []string) {
	base := "/api/v1/risk/rules"
	httpapi.Register(s, huma.Operation{OperationID: "create-risk-rule", Method: http.MethodPost, Path: base,
		Summary: "Create a risk rule", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Creates version 1 as a draft; activate it to evaluate it. Invalid JsonLogic or an unknown variable is 400 invalid_rule naming the place (logic.and[1].var)."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[RuleInput]) (*httpapi.Body[*Rule], error) {
			return httpapi.Reply(svc.CreateRule(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-rules", Method: http.MethodGet, Path: base,
		Summary: "List risk rules", Tags: tags, Description: "Each rule by its newest version."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Status string `query:"status" enum:"draft,active,retired" doc:"only rules whose newest version has this status"`
		}) (*httpapi.Body[abacus.List[*Rule]], error) {
			return httpapi.Reply(svc.ListRules(ctx, in.Status, in.Cursor, in.Limit))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-rule", Method: http.MethodGet, Path: base + "/{id}",
		Summary: "Get a risk rule with its versions", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[*RuleWithVersions], error) {
			return httpapi.Reply(svc.GetRule(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "create-risk-rule-version", Method: http.MethodPost, Path: base + "/{id}/versions",
		Summary: "Create a new version of a risk rule", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A draft; the active version keeps deciding until this one is activated."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body RuleInput
		}) (*httpapi.Body[*Rule], error) {
			return httpapi.Reply(svc.CreateRuleVersion(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "activate-risk-rule", Method: http.MethodPost, Path: base + "/{id}/activate",
		Summary: "Activate a risk rule", Tags: tags,
		Description: "Activates the newest draft (or `version`); the version active before is retired. Applies to decisions at once on this node, within a second on others."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Version int `query:"version" minimum:"0" doc:"the version to activate (default: the newest draft)"`
		}) (*httpapi.Body[*Rule], error) {
			return httpapi.Reply(svc.ActivateRule(ctx, in.ID, in.Version))
		})
	httpapi.Register(s, huma.Operation{OperationID: "retire-risk-rule", Method: http.MethodPost, Path: base + "/{id}/retire",
		Summary: "Retire a risk rule", Tags: tags, Description: "Retires the active version: the rule stops deciding."},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[*Rule], error) {
			return httpapi.Reply(svc.RetireRule(ctx, in.ID))
		})
}

func registerConfigRoutes(s *httpapi.Server, svc *Service, tags []string) {
	httpapi.Register(s, huma.Operation{OperationID: "create-risk-counter", Method: http.MethodPost, Path: "/api/v1/risk/counters",
		Summary: "Create a velocity counter", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Rules read it as counters.<name>: over a sliding window up to the event being decided (that event included), per value of key, the count of events, " +
			"the distinct values of `of`, or the sum of `of`. Built from the stored events at once."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[CounterInput]) (*httpapi.Body[*Counter], error) {
			return httpapi.Reply(svc.CreateCounter(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-counters", Method: http.MethodGet, Path: "/api/v1/risk/counters",
		Summary: "List velocity counters", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[Counter]], error) {
			return httpapi.Reply(svc.ListCounters(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-settings", Method: http.MethodGet, Path: "/api/v1/risk/settings",
		Summary: "Get risk settings", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[RiskSettings], error) {
			return httpapi.Reply(svc.GetSettings(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-risk-settings", Method: http.MethodPut, Path: "/api/v1/risk/settings",
		Summary: "Change risk settings", Tags: tags},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[RiskSettingsInput]) (*httpapi.Body[RiskSettings], error) {
			return httpapi.Reply(svc.UpdateSettings(ctx, in.Body))
		})
	// TypePath is exported because an input embeds it: huma ignores the
	// parameters of an embedded unexported type.
	type TypePath struct {
		Type string `path:"type" doc:"event type, e.g. order or custom:signup_bonus"`
	}
	httpapi.Register(s, huma.Operation{OperationID: "put-risk-event-schema", Method: http.MethodPut, Path: "/api/v1/risk/event-schemas/{type}",
		Summary: "Set your JSON Schema for a risk event type", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Events of the type must pass it besides the built-in schema; it sees the whole event as sent (e.g. require properties.plan)."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			TypePath
			RawBody []byte `contentType:"application/schema+json"`
		}) (*struct{}, error) {
			return nil, svc.PutSchema(ctx, in.Type, in.RawBody)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-event-schema", Method: http.MethodGet, Path: "/api/v1/risk/event-schemas/{type}",
		Summary: "Get your JSON Schema for a risk event type", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *TypePath) (*httpapi.Body[json.RawMessage], error) {
			return httpapi.Reply(svc.GetSchema(ctx, in.Type))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-risk-event-schema", Method: http.MethodDelete, Path: "/api/v1/risk/event-schemas/{type}",
		Summary: "Delete your JSON Schema for a risk event type", Tags: tags, DefaultStatus: http.StatusNoContent},
		abacus.ScopeAdmin, func(ctx context.Context, in *TypePath) (*struct{}, error) {
			return nil, svc.DeleteSchema(ctx, in.Type)
		})
}

func registerBacktestRoute(s *httpapi.Server, svc *Service, tags []string) {
	httpapi.Register(s, huma.Operation{OperationID: "run-risk-backtest", Method: http.MethodPost, Path: "/api/v1/risk/backtests",
		Summary: "Backtest rule versions on past events", Tags: tags,
		Description: "Replays the events of the last `days` through the active enforced rules with the given versions joined (each replacing its rule's " +
			"active version; all enforced), over the features each event was decided with, and reports how many decisions would change, " +
			"by transition, with examples. Nothing is changed. A million events take seconds."},
		abacus.ScopeRead, func(ctx context.Context, in *httpapi.Body[BacktestInput]) (*httpapi.Body[*Backtest], error) {
			return httpapi.Reply(svc.RunBacktest(ctx, in.Body))
		})
}
