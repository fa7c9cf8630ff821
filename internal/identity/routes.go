package identity

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type keyOutput struct {
	Body APIKey
}

type createdKey struct {
	APIKey
	Key string `json:"key" doc:"the API key; shown only in this response, store it now"`
}

type keyIDInput struct {
	ID string `path:"id" doc:"API key id (key_…)"`
}

// RegisterRoutes adds the identity routes: API keys, sign-up and sign-in,
// tokens, the caller's account, members, invitations, OAuth clients,
// the JWKS, the audit log, the mail outbox, and the hosted pages that
// e-mailed links open.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	httpapi.Register(s, huma.Operation{
		OperationID: "create-api-key", Method: http.MethodPost, Path: "/api/v1/api-keys",
		Summary: "Create an API key", Tags: []string{"API keys"}, DefaultStatus: http.StatusCreated,
		Description: "Creates a key for the caller's tenant. The key is in the response once and never again.",
	}, abacus.ScopeAdmin, func(ctx context.Context, in *struct{ Body NewKeyInput }) (*struct{ Body createdKey }, error) {
		k, plaintext, err := svc.CreateAPIKey(ctx, in.Body)
		if err != nil {
			return nil, err
		}
		return &struct{ Body createdKey }{Body: createdKey{APIKey: k, Key: plaintext}}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "list-api-keys", Method: http.MethodGet, Path: "/api/v1/api-keys",
		Summary: "List API keys", Tags: []string{"API keys"},
	}, abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[APIKey]], error) {
		keys, err := svc.ListAPIKeys(ctx)
		return httpapi.Reply(abacus.ListOf(keys, ""), err)
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "get-api-key", Method: http.MethodGet, Path: "/api/v1/api-keys/{id}",
		Summary: "Get an API key", Tags: []string{"API keys"},
	}, abacus.ScopeAdmin, func(ctx context.Context, in *keyIDInput) (*keyOutput, error) {
		k, err := svc.GetAPIKey(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &keyOutput{Body: k}, nil
	})
	httpapi.Register(s, huma.Operation{
		OperationID: "revoke-api-key", Method: http.MethodDelete, Path: "/api/v1/api-keys/{id}",
		Summary: "Revoke an API key", Tags: []string{"API keys"},
		Description: "Revokes the key; it stops authenticating within 5 seconds on every node. Revoking twice is not an error.",
	}, abacus.ScopeAdmin, func(ctx context.Context, in *keyIDInput) (*keyOutput, error) {
		k, err := svc.RevokeAPIKey(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &keyOutput{Body: k}, nil
	})
	registerAuthRoutes(s, svc)
	registerBrowserRoutes(s, svc)
	registerSetupRoute(s, svc)
	registerPages(s, svc)
}
