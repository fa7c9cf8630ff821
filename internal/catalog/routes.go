package catalog

import (
	"context"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// priceDoc, tierDoc and feeDoc describe pricing's types in OpenAPI with
// every optional field optional (pricing's own tags omit omitempty).
type priceDoc struct {
	Model               pricing.Model    `json:"model" enum:"per_unit,package,graduated,volume,percentage"`
	UnitAmount          *decimal.Decimal `json:"unit_amount,omitempty"`
	PackageSize         *decimal.Decimal `json:"package_size,omitempty"`
	Tiers               []tierDoc        `json:"tiers,omitempty"`
	Percentage          *decimal.Decimal `json:"percentage,omitempty"`
	FixedAmountPerEvent *decimal.Decimal `json:"fixed_amount_per_event,omitempty"`
	Minimum             *decimal.Decimal `json:"minimum,omitempty"`
	Maximum             *decimal.Decimal `json:"maximum,omitempty"`
}

type tierDoc struct {
	UpTo       *decimal.Decimal `json:"up_to,omitempty" doc:"upper bound of the tier; omit or null for the last tier"`
	UnitAmount *decimal.Decimal `json:"unit_amount,omitempty"`
	FlatAmount *decimal.Decimal `json:"flat_amount,omitempty"`
}

type feeDoc struct {
	Amount decimal.Decimal `json:"amount" doc:"per unit of quantity (seat) per full period"`
	Billed pricing.Billing `json:"billed,omitempty" enum:"in_advance,in_arrears"`
}

// RegisterSchemas makes the OpenAPI schemas of pricing's types accept
// their optional fields as optional. RegisterRoutes calls it.
func RegisterSchemas(s *httpapi.Server) {
	reg := s.API.OpenAPI().Components.Schemas
	reg.RegisterTypeAlias(reflect.TypeFor[pricing.Price](), reflect.TypeFor[priceDoc]())
	reg.RegisterTypeAlias(reflect.TypeFor[pricing.Tier](), reflect.TypeFor[tierDoc]())
	reg.RegisterTypeAlias(reflect.TypeFor[pricing.Fee](), reflect.TypeFor[feeDoc]())
}

// IDPath is the {id} path parameter (exported so huma sees it when embedded).
type IDPath struct {
	ID string `path:"id"`
}

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// VersionPath names a plan version: plan id or key, and number.
type VersionPath struct {
	ID      string `path:"id" doc:"plan id or key"`
	Version int    `path:"version" doc:"version number"`
}

// RegisterRoutes adds the customer, feature, plan and plan version routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	RegisterSchemas(s)
	s.Example(Examples()...)
	tags := []string{"Customers"}
	httpapi.Register(s, huma.Operation{OperationID: "create-customer", Method: http.MethodPost, Path: "/api/v1/customers",
		Summary: "Create a customer", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[CustomerInput]) (*httpapi.Body[Customer], error) {
			return httpapi.Reply(svc.CreateCustomer(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-customers", Method: http.MethodGet, Path: "/api/v1/customers",
		Summary: "List customers", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Search     string `query:"search" doc:"matches name, e-mail or external id, case-insensitively"`
			ExternalID string `query:"external_id" doc:"the customer with this external id (exactly)"`
		}) (*httpapi.Body[List[Customer]], error) {
			return httpapi.Reply(svc.ListCustomers(ctx, CustomerQuery{Search: in.Search, ExternalID: in.ExternalID}, Page{Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-customer", Method: http.MethodGet, Path: "/api/v1/customers/{id}",
		Summary: "Get a customer", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Customer], error) {
			return httpapi.Reply(svc.GetCustomer(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-customer", Method: http.MethodPatch, Path: "/api/v1/customers/{id}",
		Summary: "Update a customer", Tags: tags, Description: "Changes the fields given; subjects, when given, replace the customer's subjects."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body CustomerPatch
		}) (*httpapi.Body[Customer], error) {
			return httpapi.Reply(svc.UpdateCustomer(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "archive-customer", Method: http.MethodPost, Path: "/api/v1/customers/{id}/archive",
		Summary: "Archive a customer", Tags: tags, Description: "An archived customer keeps its data but can get no new subscriptions."},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*httpapi.Body[Customer], error) {
			return httpapi.Reply(svc.ArchiveCustomer(ctx, in.ID))
		})

	tags = []string{"Features"}
	httpapi.Register(s, huma.Operation{OperationID: "create-feature", Method: http.MethodPost, Path: "/api/v1/features",
		Summary: "Create a feature", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[FeatureInput]) (*httpapi.Body[Feature], error) {
			return httpapi.Reply(svc.CreateFeature(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-features", Method: http.MethodGet, Path: "/api/v1/features",
		Summary: "List features", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *ListQuery) (*httpapi.Body[List[Feature]], error) {
			return httpapi.Reply(svc.ListFeatures(ctx, Page{Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-feature", Method: http.MethodGet, Path: "/api/v1/features/{id}",
		Summary: "Get a feature by id or key", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Feature], error) {
			return httpapi.Reply(svc.GetFeature(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-feature", Method: http.MethodPatch, Path: "/api/v1/features/{id}",
		Summary: "Update a feature", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body FeaturePatch
		}) (*httpapi.Body[Feature], error) {
			return httpapi.Reply(svc.UpdateFeature(ctx, in.ID, in.Body))
		})

	tags = []string{"Plans"}
	httpapi.Register(s, huma.Operation{OperationID: "create-plan", Method: http.MethodPost, Path: "/api/v1/plans",
		Summary: "Create a plan", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[PlanInput]) (*httpapi.Body[Plan], error) {
			return httpapi.Reply(svc.CreatePlan(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-plans", Method: http.MethodGet, Path: "/api/v1/plans",
		Summary: "List plans", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *ListQuery) (*httpapi.Body[List[Plan]], error) {
			return httpapi.Reply(svc.ListPlans(ctx, Page{Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "preview-price", Method: http.MethodPost, Path: "/api/v1/plans/price-preview",
		Summary: "Preview what a usage price charges", Tags: tags,
		Description: "Rates a quantity with a price definition, as an invoice would for one period, and answers the amount " +
			"with its breakdown per tier; nothing is stored. The dashboard's price editor uses it."},
		abacus.ScopeRead, func(ctx context.Context, in *httpapi.Body[PricePreviewInput]) (*httpapi.Body[PricePreview], error) {
			return httpapi.Reply(PreviewPrice(in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-plan", Method: http.MethodGet, Path: "/api/v1/plans/{id}",
		Summary: "Get a plan by id or key", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Plan], error) {
			return httpapi.Reply(svc.GetPlan(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "create-plan-version", Method: http.MethodPost, Path: "/api/v1/plans/{id}/versions",
		Summary: "Create a draft plan version", Tags: tags, DefaultStatus: http.StatusCreated},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body VersionSpec
		}) (*httpapi.Body[Version], error) {
			return httpapi.Reply(svc.CreateVersion(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-plan-versions", Method: http.MethodGet, Path: "/api/v1/plans/{id}/versions",
		Summary: "List a plan's versions", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[List[Version]], error) {
			vs, err := svc.ListVersions(ctx, in.ID)
			return httpapi.Reply(abacus.ListOf(vs, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-plan-version", Method: http.MethodGet, Path: "/api/v1/plans/{id}/versions/{version}",
		Summary: "Get a plan version", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *VersionPath) (*httpapi.Body[Version], error) {
			return httpapi.Reply(svc.GetVersion(ctx, in.ID, in.Version))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-plan-version", Method: http.MethodPut, Path: "/api/v1/plans/{id}/versions/{version}",
		Summary: "Replace a draft plan version", Tags: tags, Description: "Only drafts change; a published version answers 409 version_immutable."},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			VersionPath
			Body VersionSpec
		}) (*httpapi.Body[Version], error) {
			return httpapi.Reply(svc.UpdateVersion(ctx, in.ID, in.Version, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "publish-plan-version", Method: http.MethodPost, Path: "/api/v1/plans/{id}/versions/{version}/publish",
		Summary: "Publish a draft plan version", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *VersionPath) (*httpapi.Body[Version], error) {
			return httpapi.Reply(svc.PublishVersion(ctx, in.ID, in.Version))
		})
	httpapi.Register(s, huma.Operation{OperationID: "archive-plan-version", Method: http.MethodPost, Path: "/api/v1/plans/{id}/versions/{version}/archive",
		Summary: "Archive a plan version", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *VersionPath) (*httpapi.Body[Version], error) {
			return httpapi.Reply(svc.ArchiveVersion(ctx, in.ID, in.Version))
		})
}
