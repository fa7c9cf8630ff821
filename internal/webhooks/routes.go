package webhooks

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// IDPath is the {id} path parameter.
type IDPath struct {
	ID string `path:"id" doc:"webhook endpoint id"`
}

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// RegisterRoutes adds the webhook endpoint, delivery log and event type
// routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Webhooks"}
	base := "/api/v1/webhook-endpoints"
	httpapi.Register(s, huma.Operation{OperationID: "list-webhook-event-types", Method: http.MethodGet, Path: "/api/v1/webhook-event-types",
		Summary: "List webhook event types", Tags: tags,
		Description: "The domain event types an endpoint can subscribe to, each version with the JSON Schema of its payload (the data of a webhook)."},
		abacus.ScopeRead, func(context.Context, *struct{}) (*httpapi.Body[abacus.List[outbox.Type]], error) {
			// The catalog is small and fixed per build: one page.
			return &httpapi.Body[abacus.List[outbox.Type]]{Body: abacus.ListOf(outbox.Types(), "")}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "create-webhook-endpoint", Method: http.MethodPost, Path: base,
		Summary: "Create a webhook endpoint", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "The answer carries the endpoint's signing secret (whsec_…), shown only here and after a rotation. URLs reaching loopback, private, link-local or metadata addresses are refused unless webhooks.allow_private_targets is set."},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[EndpointInput]) (*httpapi.Body[EndpointWithSecret], error) {
			return httpapi.Reply(svc.CreateEndpoint(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-webhook-endpoints", Method: http.MethodGet, Path: base,
		Summary: "List webhook endpoints", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *ListQuery) (*httpapi.Body[abacus.List[Endpoint]], error) {
			return httpapi.Reply(svc.ListEndpoints(ctx, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-webhook-endpoint", Method: http.MethodGet, Path: base + "/{id}",
		Summary: "Get a webhook endpoint", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Endpoint], error) {
			return httpapi.Reply(svc.GetEndpoint(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-webhook-endpoint", Method: http.MethodPatch, Path: base + "/{id}",
		Summary: "Update a webhook endpoint", Tags: tags, Description: "Changes the fields given; enabled=true resumes an endpoint Abacus disabled."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			IDPath
			Body EndpointPatch
		}) (*httpapi.Body[Endpoint], error) {
			return httpapi.Reply(svc.UpdateEndpoint(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-webhook-endpoint", Method: http.MethodDelete, Path: base + "/{id}",
		Summary: "Delete a webhook endpoint", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Deletes the endpoint with its messages and delivery log."},
		abacus.ScopeAdmin, func(ctx context.Context, in *IDPath) (*struct{}, error) {
			return nil, svc.DeleteEndpoint(ctx, in.ID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "rotate-webhook-secret", Method: http.MethodPost, Path: base + "/{id}/rotate-secret",
		Summary: "Rotate a webhook endpoint's secret", Tags: tags,
		Description: "Answers the new secret once. For 24 hours the old secret keeps signing too: webhook-signature carries two v1 signatures."},
		abacus.ScopeAdmin, func(ctx context.Context, in *IDPath) (*httpapi.Body[EndpointWithSecret], error) {
			return httpapi.Reply(svc.RotateSecret(ctx, in.ID))
		})
	registerLogRoutes(s, svc, tags, base)
}

func registerLogRoutes(s *httpapi.Server, svc *Service, tags []string, base string) {
	httpapi.Register(s, huma.Operation{OperationID: "list-webhook-deliveries", Method: http.MethodGet, Path: base + "/{id}/deliveries",
		Summary: "List an endpoint's deliveries", Tags: tags,
		Description: "Messages sent to the endpoint, by id, each with its attempts (status, latency, response excerpt) and next attempt."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			IDPath
			ListQuery
			Status string `query:"status" enum:"pending,delivered,failed" doc:"only messages in this status"`
		}) (*httpapi.Body[abacus.List[Message]], error) {
			return httpapi.Reply(svc.ListDeliveries(ctx, in.ID, in.Status, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "resend-webhook-message", Method: http.MethodPost, Path: base + "/{id}/deliveries/{message_id}/resend",
		Summary: "Resend a webhook message", Tags: tags,
		Description: "Sends the message again at once, with the same webhook-id and a fresh retry schedule."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			MessageID string `path:"message_id" doc:"message id (webhook-id)"`
		}) (*httpapi.Body[Message], error) {
			return httpapi.Reply(svc.Resend(ctx, in.ID, in.MessageID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "replay-webhook-endpoint", Method: http.MethodPost, Path: base + "/{id}/replay",
		Summary: "Replay events since a time", Tags: tags,
		Description: "Sends every event since the time that the endpoint's filter takes again: its messages keep their webhook-id; events it missed (while disabled) get new messages."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body ReplayInput
		}) (*httpapi.Body[Replayed], error) {
			return httpapi.Reply(svc.Replay(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "test-webhook-endpoint", Method: http.MethodPost, Path: base + "/{id}/test",
		Summary: "Send a test event", Tags: tags, DefaultStatus: http.StatusAccepted,
		Description: "Queues a webhook.test event for the endpoint, whatever its filter; the answer is its message, whose attempts the delivery log shows."},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[Message], error) {
			return httpapi.Reply(svc.SendTest(ctx, in.ID))
		})
}
