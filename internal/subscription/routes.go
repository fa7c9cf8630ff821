package subscription

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/period"
)

// IDPath is the {id} path parameter (exported so huma sees it when embedded).
type IDPath struct {
	ID string `path:"id"`
}

// RegisterRoutes adds the subscription and entitlement routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	catalog.RegisterSchemas(s)
	tags := []string{"Subscriptions"}
	httpapi.Register(s, huma.Operation{OperationID: "create-subscription", Method: http.MethodPost, Path: "/api/v1/subscriptions",
		Summary: "Subscribe a customer to a plan", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[CreateInput]) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.Create(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-subscriptions", Method: http.MethodGet, Path: "/api/v1/subscriptions",
		Summary: "List subscriptions", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Limit      int    `query:"limit" minimum:"0" maximum:"100"`
			Cursor     string `query:"cursor"`
			CustomerID string `query:"customer_id" doc:"customer id or external id"`
		}) (*httpapi.Body[catalog.List[Subscription]], error) {
			cus, err := catalog.CustomerFilter(ctx, svc.db, in.CustomerID)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.List(ctx, cus, catalog.Page{Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-subscription", Method: http.MethodGet, Path: "/api/v1/subscriptions/{id}",
		Summary: "Get a subscription", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.Get(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-subscription-history", Method: http.MethodGet, Path: "/api/v1/subscriptions/{id}/history",
		Summary: "A subscription's history of changes", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[catalog.List[Change]], error) {
			h, err := svc.History(ctx, in.ID)
			return httpapi.Reply(abacus.ListOf(h, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-subscription-phases", Method: http.MethodGet, Path: "/api/v1/subscriptions/{id}/phases",
		Summary: "A subscription's phases (version and quantity over time)", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[catalog.List[Phase]], error) {
			ph, err := svc.Phases(ctx, in.ID, period.Period{})
			return httpapi.Reply(abacus.ListOf(ph, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "change-subscription-plan", Method: http.MethodPost, Path: "/api/v1/subscriptions/{id}/change-plan",
		Summary: "Change the plan now or at period end", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body ChangePlanInput
		}) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.ChangePlan(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "change-subscription-quantity", Method: http.MethodPost, Path: "/api/v1/subscriptions/{id}/change-quantity",
		Summary: "Change the seat quantity (prorated)", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body struct {
				Quantity decimal.Decimal `json:"quantity"`
			}
		}) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.ChangeQuantity(ctx, in.ID, in.Body.Quantity))
		})
	httpapi.Register(s, huma.Operation{OperationID: "cancel-subscription", Method: http.MethodPost, Path: "/api/v1/subscriptions/{id}/cancel",
		Summary: "Cancel now or at period end", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body CancelInput
		}) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.Cancel(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "pause-subscription", Method: http.MethodPost, Path: "/api/v1/subscriptions/{id}/pause",
		Summary: "Pause a subscription (unused in-advance fees credited)", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.Pause(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "resume-subscription", Method: http.MethodPost, Path: "/api/v1/subscriptions/{id}/resume",
		Summary: "Resume a paused subscription (in-advance fees charged for the rest of the period)", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[Subscription], error) {
			return httpapi.Reply(svc.Resume(ctx, in.ID))
		})

	tags = []string{"Entitlements"}
	httpapi.Register(s, huma.Operation{OperationID: "list-entitlements", Method: http.MethodGet, Path: "/api/v1/customers/{id}/entitlements",
		Summary: "A customer's entitlements to every feature", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[catalog.List[Entitlement]], error) {
			es, err := svc.Entitlements(ctx, in.ID)
			return httpapi.Reply(abacus.ListOf(es, ""), err)
		})
	// The check is called on every request of the tenant's app: a raw
	// handler answers it with the memoised encoding of CheckJSON, the same
	// bytes the huma operation it replaced sent.
	log := s.Logger()
	httpapi.HandleOp[Entitlement](s, huma.Operation{OperationID: "check-entitlement", Method: http.MethodGet, Path: "/api/v1/customers/{id}/entitlements/{feature}",
		Summary: "Check one entitlement", Tags: tags, Description: "Built for every request of the tenant's app: answers from a short-lived cache plus live usage.",
		Parameters: []*huma.Param{
			{Name: "id", In: "path", Description: "customer id or external id", Required: true, Schema: &huma.Schema{Type: "string", Description: "customer id or external id"}},
			{Name: "feature", In: "path", Description: "feature key", Required: true, Schema: &huma.Schema{Type: "string", Description: "feature key"}},
		}},
		abacus.ScopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := svc.CheckJSON(r.Context(), r.PathValue("id"), r.PathValue("feature"))
			if err != nil {
				httpapi.WriteOpError(w, r, log, err)
				return
			}
			httpapi.WriteJSON(w, body)
		}))
}
