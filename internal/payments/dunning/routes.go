package dunning

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// PlanPath is a plan's {plan_id} path parameter.
type PlanPath struct {
	PlanID string `path:"plan_id" doc:"the plan's id or key"`
}

// RegisterRoutes adds the dunning routes: the tenant's settings, a plan's
// override, and the runs.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Dunning"}
	op := func(id, method, path, summary, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: desc, Tags: tags}
	}
	httpapi.Register(s, op("get-dunning-settings", http.MethodGet, "/api/v1/settings/dunning", "Get the dunning settings",
		"The retry schedule, reminders, grace period and final action for overdue invoices, the features a suspension closes, "+
			"whether a paid prepaid period keeps its access, and what disputes do. The defaults until the tenant saves its own."),
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[DunningSettings], error) {
			return httpapi.Reply(svc.Settings(ctx))
		})
	httpapi.Register(s, op("put-dunning-settings", http.MethodPut, "/api/v1/settings/dunning", "Replace the dunning settings",
		"Runs already started keep the schedule they started with."), abacus.ScopeWrite,
		func(ctx context.Context, in *httpapi.Body[DunningSettings]) (*httpapi.Body[DunningSettings], error) {
			return httpapi.Reply(svc.SaveSettings(ctx, in.Body))
		})
	httpapi.Register(s, op("get-dunning-plan-override", http.MethodGet, "/api/v1/settings/dunning/plans/{plan_id}", "Get a plan's dunning override",
		"The parts of the schedule a plan's subscriptions follow instead of the tenant's (null: the tenant's)."), abacus.ScopeRead,
		func(ctx context.Context, in *PlanPath) (*httpapi.Body[PlanOverride], error) {
			return httpapi.Reply(svc.PlanOverride(ctx, in.PlanID))
		})
	httpapi.Register(s, op("put-dunning-plan-override", http.MethodPut, "/api/v1/settings/dunning/plans/{plan_id}", "Set a plan's dunning override", ""),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			PlanPath
			Body PlanOverride
		}) (*httpapi.Body[PlanOverride], error) {
			return httpapi.Reply(svc.SavePlanOverride(ctx, in.PlanID, in.Body))
		})
	httpapi.Register(s, op("list-dunning-runs", http.MethodGet, "/api/v1/dunning/runs", "List dunning runs",
		"One run per overdue invoice: its schedule, attempts, next step and how it ended, by id."), abacus.ScopeRead,
		func(ctx context.Context, in *struct {
			InvoiceID  string `query:"invoice_id" doc:"only this invoice's run"`
			CustomerID string `query:"customer_id" doc:"only this customer's runs"`
			Status     string `query:"status" enum:"scheduled,active,recovered,exhausted,closed"`
			Limit      int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
			Cursor     string `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[Run]], error) {
			return httpapi.Reply(svc.ListRuns(ctx, RunFilter{InvoiceID: in.InvoiceID, CustomerID: in.CustomerID, Status: in.Status,
				Limit: in.Limit, Cursor: in.Cursor}))
		})
}
