package outbox

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// RegisterRoutes serves the catalog of domain event types, the contract
// outbound webhooks, the dashboard and other consumers build on.
func RegisterRoutes(s *httpapi.Server) {
	tags := []string{"Domain events"}
	s.Example(exampleType())
	httpapi.Register(s, huma.Operation{OperationID: "list-domain-event-types", Method: http.MethodGet, Path: "/api/v1/domain-event-types",
		Summary: "List domain event types", Tags: tags,
		Description: "Every domain event Abacus publishes (NATS subject abacus.events.<type>), each version with the JSON Schema of its payload."},
		abacus.ScopeRead, func(context.Context, *struct{}) (*httpapi.Body[abacus.List[Type]], error) {
			// The catalog is small and fixed per build: one page, next_cursor "".
			return &httpapi.Body[abacus.List[Type]]{Body: abacus.ListOf(Types(), "")}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-domain-event-type", Method: http.MethodGet, Path: "/api/v1/domain-event-types/{type}",
		Summary: "Get a domain event type", Tags: tags,
		Description: "The latest version of the event type, or the version asked for."},
		abacus.ScopeRead, func(_ context.Context, in *struct {
			Type    string `path:"type" example:"invoice.finalized"`
			Version int    `query:"version" minimum:"0" doc:"a version; the latest when absent"`
		}) (*httpapi.Body[Type], error) {
			t, ok := LookupType(in.Type, in.Version)
			if !ok {
				return nil, abacus.Errorf(abacus.KindNotFound, "domain_event_type_not_found",
					"domain event type %q (version %d; 0 = latest) does not exist; GET /api/v1/domain-event-types lists them", in.Type, in.Version)
			}
			return &httpapi.Body[Type]{Body: t}, nil
		})
}

// exampleType is what the reference shows for an event type: a real one
// when the invoice events are defined in this build.
func exampleType() Type {
	if t, ok := LookupType("invoice.finalized", 0); ok {
		return t
	}
	return Type{Name: "invoice.finalized", Version: 1, Aggregate: "invoice", Summary: "An invoice was finalized: numbered and due.",
		Schema: []byte(`{"type":"object","properties":{"id":{"type":"string"},"number":{"type":"string"},"total":{"type":"string"}}}`)}
}
