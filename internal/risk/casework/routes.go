package casework

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// CaseIDPath is the {id} of case routes.
type CaseIDPath struct {
	ID string `path:"id" doc:"review case id"`
}

// ListIDPath is the {id} of list routes.
type ListIDPath struct {
	ID string `path:"id" doc:"list id"`
}

// RegisterRoutes adds the labels, customer graph, lists, review cases and
// score model routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Risk"}
	httpapi.Register(s, huma.Operation{OperationID: "set-risk-label", Method: http.MethodPost, Path: "/api/v1/risk/labels",
		Summary: "Label a customer", Tags: tags,
		Description: "Labels a customer (the tenant's own id, as risk events carry it) fraud or legitimate. graph.linked_labelled_fraud of every linked customer counts a fraud label at once; the score model trains on labels. A lost chargeback labels fraud by itself."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[LabelInput]) (*httpapi.Body[Label], error) {
			return httpapi.Reply(svc.SetLabel(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-labels", Method: http.MethodGet, Path: "/api/v1/risk/labels",
		Summary: "List labelled customers", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Label string `query:"label" enum:"fraud,legitimate" doc:"only this label"`
		}) (*httpapi.Body[abacus.List[Label]], error) {
			return httpapi.Reply(svc.ListLabels(ctx, in.Label, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-customer-graph", Method: http.MethodGet, Path: "/api/v1/risk/customers/{id}/graph",
		Summary: "A customer's link graph", Tags: tags,
		Description: "The entities within hops links of the customer (devices, cards, e-mails, phones, IPs, addresses, end users, other customers), nearest first, at most limit of them, with every edge between them and the customer's graph.* variables."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID    string `path:"id" doc:"the tenant's own customer id"`
			Hops  int    `query:"hops" minimum:"0" maximum:"6" doc:"1–6 (default 2); a customer two customers away through shared devices is 4 hops away"`
			Limit int    `query:"limit" minimum:"0" maximum:"500" doc:"most nodes answered, 1–500 (default 100)"`
		}) (*httpapi.Body[CustomerGraph], error) {
			return httpapi.Reply(svc.CustomerGraph(ctx, in.ID, in.Hops, in.Limit))
		})
	registerListRoutes(s, svc, tags)
	registerCaseRoutes(s, svc, tags)
	httpapi.Register(s, huma.Operation{OperationID: "train-risk-model", Method: http.MethodPost, Path: "/api/v1/risk/models",
		Summary: "Train the score model now", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Trains a new version of the tenant's score model (logistic regression) on its labelled customers; it also retrains daily. With fewer than 20 labelled customers (5 of each label) it answers 409 and the heuristic score stays."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[ModelInfo], error) {
			return httpapi.Reply(svc.TrainModel(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-model", Method: http.MethodGet, Path: "/api/v1/risk/models/current",
		Summary: "The score model in use", Tags: tags, Description: "Version 0 is the heuristic used before there are enough labels."},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[ModelInfo], error) {
			return httpapi.Reply(svc.CurrentModel(ctx))
		})
}

func registerListRoutes(s *httpapi.Server, svc *Service, tags []string) {
	base := "/api/v1/risk/lists"
	httpapi.Register(s, huma.Operation{OperationID: "create-risk-list", Method: http.MethodPost, Path: base,
		Summary: "Create an allow, block or watch list", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Rules read lists.<name>. A hit on a block list blocks and a hit on an allow list allows, each a reason like a matched rule (list:<name>); a watch list only sets the variable."},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[ListInput]) (*httpapi.Body[List], error) {
			return httpapi.Reply(svc.CreateList(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-lists", Method: http.MethodGet, Path: base,
		Summary: "List allow, block and watch lists", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *ListQuery) (*httpapi.Body[abacus.List[List]], error) {
			return httpapi.Reply(svc.ListLists(ctx, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "add-risk-list-entry", Method: http.MethodPost, Path: base + "/{id}/entries",
		Summary: "Put an identifier on a list", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Personal identifiers (device, IP, e-mail, phone, card fingerprint, shipping address) are given in clear and stored as the tenant's keyed hash, the way events store them. Putting the same identifier again replaces its note and expiry."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ListIDPath
			Body ListEntryInput
		}) (*httpapi.Body[ListEntry], error) {
			return httpapi.Reply(svc.AddListEntry(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-list-entries", Method: http.MethodGet, Path: base + "/{id}/entries",
		Summary: "List a list's entries", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListIDPath
			ListQuery
		}) (*httpapi.Body[abacus.List[ListEntry]], error) {
			return httpapi.Reply(svc.ListEntries(ctx, in.ID, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-risk-list-entry", Method: http.MethodDelete, Path: base + "/{id}/entries/{entry_id}",
		Summary: "Take an identifier off a list", Tags: tags, DefaultStatus: http.StatusNoContent},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ListIDPath
			EntryID string `path:"entry_id" doc:"entry id"`
		}) (*struct{}, error) {
			return nil, svc.DeleteListEntry(ctx, in.ID, in.EntryID)
		})
}

func registerCaseRoutes(s *httpapi.Server, svc *Service, tags []string) {
	base := "/api/v1/risk/cases"
	httpapi.Register(s, huma.Operation{OperationID: "list-risk-cases", Method: http.MethodGet, Path: base,
		Summary: "List review cases", Tags: tags, Description: "Every review decision of a stored event opens a case; oldest first."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			CaseFilter
		}) (*httpapi.Body[abacus.List[Case]], error) {
			return httpapi.Reply(svc.ListCases(ctx, in.CaseFilter, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-risk-case", Method: http.MethodGet, Path: base + "/{id}",
		Summary: "Get a review case with its comments", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *CaseIDPath) (*httpapi.Body[Case], error) {
			return httpapi.Reply(svc.GetCase(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "assign-risk-case", Method: http.MethodPost, Path: base + "/{id}/assign",
		Summary: "Assign a review case", Tags: tags, Description: "An empty assignee unassigns. A resolved case cannot be assigned (409)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			CaseIDPath
			Body AssignInput
		}) (*httpapi.Body[Case], error) {
			return httpapi.Reply(svc.AssignCase(ctx, in.ID, in.Body.Assignee))
		})
	httpapi.Register(s, huma.Operation{OperationID: "comment-risk-case", Method: http.MethodPost, Path: base + "/{id}/comments",
		Summary: "Comment on a review case", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			CaseIDPath
			Body CommentInput
		}) (*httpapi.Body[Case], error) {
			return httpapi.Reply(svc.CommentCase(ctx, in.ID, in.Body.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "resolve-risk-case", Method: http.MethodPost, Path: base + "/{id}/resolve",
		Summary: "Resolve a review case with a label", Tags: tags,
		Description: "Labels the case's customer (fraud or legitimate; source review). A resolved case cannot be resolved again (409)."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			CaseIDPath
			Body ResolveInput
		}) (*httpapi.Body[Case], error) {
			return httpapi.Reply(svc.ResolveCase(ctx, in.ID, in.Body))
		})
}
