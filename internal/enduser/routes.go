package enduser

import (
	"context"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// The management API: the tenant's staff (API keys, users) manage end
// users, apps and the end-user policy with the existing scopes.

// CreateUserBody is POST /api/v1/end-users.
type CreateUserBody struct {
	Email         string         `json:"email" maxLength:"254" doc:"unique in the tenant, case-insensitively"`
	Password      string         `json:"password,omitempty" maxLength:"1024" doc:"8 to 128 characters, not a common password; omit for a user who signs in by magic link or code, or sets a password through a reset"`
	Name          string         `json:"name,omitempty" maxLength:"200"`
	EmailVerified bool           `json:"email_verified,omitempty" doc:"true when you already verified the address"`
	Locale        string         `json:"locale,omitempty" maxLength:"35" doc:"BCP 47, e.g. en or pt-BR"`
	TimeZone      string         `json:"time_zone,omitempty" maxLength:"64" doc:"IANA, e.g. Europe/Paris"`
	AvatarURL     string         `json:"avatar_url,omitempty" maxLength:"2048"`
	Metadata      map[string]any `json:"metadata,omitempty" doc:"your own data, up to 50 keys"`
}

// UpdateUserBody is PATCH /api/v1/end-users/{id}: fields given change.
type UpdateUserBody struct {
	Name          *string        `json:"name,omitempty" maxLength:"200"`
	Email         *string        `json:"email,omitempty" maxLength:"254" doc:"a new address is unverified unless email_verified is true"`
	EmailVerified *bool          `json:"email_verified,omitempty"`
	Locale        *string        `json:"locale,omitempty" maxLength:"35"`
	TimeZone      *string        `json:"time_zone,omitempty" maxLength:"64"`
	AvatarURL     *string        `json:"avatar_url,omitempty" maxLength:"2048"`
	Metadata      map[string]any `json:"metadata,omitempty" doc:"replaces the metadata"`
	Status        *string        `json:"status,omitempty" enum:"active,disabled" doc:"disabled signs every session out and refuses sign-in"`
}

// CreateAppBody is POST /api/v1/apps.
type CreateAppBody struct {
	Name         string   `json:"name" minLength:"1" maxLength:"200"`
	Type         string   `json:"type" enum:"public,confidential" doc:"public: runs on the user's device (SPA, mobile), uses PKCE; confidential: has a server and a client secret"`
	RedirectURIs []string `json:"redirect_uris,omitempty" maxItems:"20" doc:"OIDC redirect URIs, matched exactly: https, or http on localhost, or a private scheme for native apps"`
}

// UpdateAppBody is PATCH /api/v1/apps/{id}.
type UpdateAppBody struct {
	Name         *string   `json:"name,omitempty" minLength:"1" maxLength:"200"`
	RedirectURIs *[]string `json:"redirect_uris,omitempty" maxItems:"20"`
}

// CreatedApp is an app as created: with its client secret, shown once.
type CreatedApp struct {
	App
	ClientSecret string `json:"client_secret,omitempty" doc:"confidential apps only; shown once, stored hashed"`
}

// SettingsBody is PUT /api/v1/settings/end-users.
type SettingsBody struct {
	Signup               string         `json:"signup" enum:"open,invite_only,closed" doc:"who may sign up in the tenant's apps"`
	AllowedEmailDomains  []string       `json:"allowed_email_domains,omitempty" maxItems:"100" doc:"when set, sign-up takes addresses at these domains only"`
	PersonalOrganization bool           `json:"personal_organization,omitempty" doc:"give every new end user an organization of their own (B2C)"`
	AppURL               string         `json:"app_url,omitempty" maxLength:"2048" doc:"where e-mailed links open: {app_url}/verify-email?token=…; default: Abacus's pages under the tenant's issuer"`
	CustomClaims         map[string]any `json:"custom_claims,omitempty" doc:"added to every access and ID token"`
	AccessTokenTTL       int            `json:"access_token_ttl,omitempty" minimum:"0" maximum:"86400" doc:"seconds (60–86400; default 900)"`
	AccessTokenAlg       string         `json:"access_token_alg,omitempty" enum:"EdDSA,RS256" doc:"EdDSA (default) is cheap to sign; RS256 is cheaper to verify"`
	RequireVerifiedEmail bool           `json:"require_verified_email,omitempty" doc:"sign-up answers verification_sent without tokens, and a password sign-in needs a verified address"`
}

// IntrospectBody is POST /api/v1/end-users/introspect.
type IntrospectBody struct {
	Token string `json:"token" maxLength:"4096" doc:"an end user's access token"`
}

// Introspection answers whether an access token is active (RFC 7662).
type Introspection struct {
	Active    bool           `json:"active"`
	Subject   string         `json:"sub,omitempty"`
	ClientID  string         `json:"client_id,omitempty"`
	SessionID string         `json:"sid,omitempty"`
	Scope     string         `json:"scope,omitempty"`
	Issuer    string         `json:"iss,omitempty"`
	ExpiresAt int64          `json:"exp,omitempty"`
	IssuedAt  int64          `json:"iat,omitempty"`
	Claims    map[string]any `json:"claims,omitempty" doc:"org, org_role and the tenant's custom claims"`
}

// Introspect checks an access token for the staff tenant on ctx: inactive
// when it is invalid, expired, signed out or another tenant's.
func (s *Service) Introspect(ctx context.Context, tok string) (Introspection, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Introspection{}, err
	}
	c, err := s.VerifyAccessToken(ctx, tenant, tok)
	if abacus.ErrorKind(err) == abacus.KindUnauthorized {
		return Introspection{}, nil
	}
	if err != nil {
		return Introspection{}, err
	}
	return Introspection{Active: true, Subject: c.Subject, ClientID: c.ClientID, SessionID: c.SessionID, Scope: c.Scope,
		Issuer: c.Issuer, ExpiresAt: c.ExpiresAt.Unix(), IssuedAt: c.IssuedAt.Unix(), Claims: c.Extra}, nil
}

// IDPath is the {id} path parameter (exported so huma sees it when
// embedded).
type IDPath struct {
	ID string `path:"id" maxLength:"64"`
}

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// RegisterRoutes adds the management routes and the end users' own
// public routes (RegisterPublicRoutes).
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	registerSchemaNames(s)
	s.Example(Examples()...)
	registerUserRoutes(s, svc)
	registerAppRoutes(s, svc)
	registerKeyRoutes(s, svc)
	RegisterPublicRoutes(s, svc)
	registerPages(s, svc)
}

func registerUserRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"End users"}
	httpapi.Register(s, huma.Operation{OperationID: "create-end-user", Method: http.MethodPost, Path: "/api/v1/end-users",
		Summary: "Create an end user", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "Adds a user of the tenant's apps (not a staff member). The e-mail is unique in the tenant, case-insensitively."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[CreateUserBody]) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.CreateUser(ctx, NewUser(in.Body)))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-end-users", Method: http.MethodGet, Path: "/api/v1/end-users",
		Summary: "List end users", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ListQuery
			Search string `query:"search" maxLength:"254" doc:"prefix of the e-mail or the name, case-insensitive"`
			Status string `query:"status" enum:"active,disabled"`
		}) (*httpapi.Body[abacus.List[User]], error) {
			return httpapi.Reply(svc.ListUsers(ctx, UserQuery{Search: in.Search, Status: in.Status, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-end-user", Method: http.MethodGet, Path: "/api/v1/end-users/{id}",
		Summary: "Get an end user", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.User(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-end-user", Method: http.MethodPatch, Path: "/api/v1/end-users/{id}",
		Summary: "Update, disable or enable an end user", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body UpdateUserBody
		}) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.UpdateUser(ctx, in.ID, UserPatch(in.Body)))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-end-user", Method: http.MethodDelete, Path: "/api/v1/end-users/{id}",
		Summary: "Delete an end user and erase their personal data", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Signs every session out and erases e-mail, name, profile, metadata, password, MFA and device details; the id remains."},
		abacus.ScopeWrite, func(ctx context.Context, in *IDPath) (*struct{}, error) {
			return nil, svc.DeleteUser(ctx, in.ID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "export-end-user", Method: http.MethodGet, Path: "/api/v1/end-users/{id}/export",
		Summary: "Export an end user's data", Tags: tags, Description: "Everything kept about the user, for a data subject access request."},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[Export], error) {
			return httpapi.Reply(svc.ExportUser(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-end-user-sessions", Method: http.MethodGet, Path: "/api/v1/end-users/{id}/sessions",
		Summary: "List an end user's sessions (devices)", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, in *IDPath) (*httpapi.Body[abacus.List[Session]], error) {
			if _, err := svc.User(ctx, in.ID); err != nil {
				return nil, err
			}
			list, err := svc.ListSessions(ctx, in.ID)
			return httpapi.Reply(abacus.ListOf(list, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "revoke-end-user-session", Method: http.MethodDelete, Path: "/api/v1/end-users/{id}/sessions/{sid}",
		Summary: "Sign an end user's session out", Tags: tags, DefaultStatus: http.StatusNoContent},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			SID string `path:"sid" maxLength:"64"`
		}) (*struct{}, error) {
			return nil, svc.RevokeUserSession(ctx, in.ID, in.SID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "introspect-end-user-token", Method: http.MethodPost, Path: "/api/v1/end-users/introspect",
		Summary: "Introspect an end user's access token", Tags: tags,
		Description: "Whether the token is active at this tenant (RFC 7662): signed by its keys, not expired, its session signed in."},
		abacus.ScopeRead, func(ctx context.Context, in *httpapi.Body[IntrospectBody]) (*httpapi.Body[Introspection], error) {
			return httpapi.Reply(svc.Introspect(ctx, in.Body.Token))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-end-user-settings", Method: http.MethodGet, Path: "/api/v1/settings/end-users",
		Summary: "Get the end-user policy", Tags: tags},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[Settings], error) {
			return httpapi.Reply(svc.Settings(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "put-end-user-settings", Method: http.MethodPut, Path: "/api/v1/settings/end-users",
		Summary: "Set the end-user policy", Tags: tags},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[SettingsBody]) (*httpapi.Body[Settings], error) {
			b := in.Body
			return httpapi.Reply(svc.PutSettings(ctx, Settings{Signup: b.Signup, AllowedEmailDomains: b.AllowedEmailDomains,
				PersonalOrganization: b.PersonalOrganization, AppURL: b.AppURL, CustomClaims: b.CustomClaims,
				AccessTokenTTL: b.AccessTokenTTL, AccessTokenAlg: b.AccessTokenAlg, RequireVerifiedEmail: b.RequireVerifiedEmail}))
		})
}

// SigningKeys lists a tenant's end-user token signing keys.
type SigningKeys struct {
	Keys []KeyInfo `json:"keys"`
}

func registerKeyRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"End users"}
	httpapi.Register(s, huma.Operation{OperationID: "list-end-user-signing-keys", Method: http.MethodGet, Path: "/api/v1/settings/end-users/keys",
		Summary: "List the end-user token signing keys", Tags: tags, Description: "Public details only; the JWKS publishes the public keys."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[SigningKeys], error) {
			keys, err := svc.Keys(ctx)
			return httpapi.Reply(SigningKeys{Keys: keys}, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "rotate-end-user-signing-keys", Method: http.MethodPost, Path: "/api/v1/settings/end-users/keys/rotate",
		Summary: "Rotate the end-user token signing keys", Tags: tags,
		Description: "New keys sign from now on; the replaced ones keep verifying, and stay in the JWKS, for 24 hours."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[SigningKeys], error) {
			tenant, err := abacus.TenantFrom(ctx)
			if err != nil {
				return nil, err
			}
			keys, err := svc.RotateKeys(ctx, tenant)
			return httpapi.Reply(SigningKeys{Keys: keys}, err)
		})
}

func registerAppRoutes(s *httpapi.Server, svc *Service) {
	tags := []string{"Apps"}
	httpapi.Register(s, huma.Operation{OperationID: "create-app", Method: http.MethodPost, Path: "/api/v1/apps",
		Summary: "Register an app", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "An app end users sign in to: an OpenID Connect client. Its client_id is publishable; a confidential app's client_secret is shown once."},
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[CreateAppBody]) (*httpapi.Body[CreatedApp], error) {
			a, secret, err := svc.CreateApp(ctx, NewApp{Name: in.Body.Name, Type: in.Body.Type, RedirectURIs: in.Body.RedirectURIs})
			return httpapi.Reply(CreatedApp{App: a, ClientSecret: secret}, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-apps", Method: http.MethodGet, Path: "/api/v1/apps",
		Summary: "List apps", Tags: tags},
		abacus.ScopeAdmin, func(ctx context.Context, in *ListQuery) (*httpapi.Body[abacus.List[App]], error) {
			return httpapi.Reply(svc.ListApps(ctx, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-app", Method: http.MethodGet, Path: "/api/v1/apps/{id}",
		Summary: "Get an app", Tags: tags},
		abacus.ScopeAdmin, func(ctx context.Context, in *IDPath) (*httpapi.Body[App], error) {
			return httpapi.Reply(svc.App(ctx, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-app", Method: http.MethodPatch, Path: "/api/v1/apps/{id}",
		Summary: "Rename an app or change its redirect URIs", Tags: tags},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct {
			IDPath
			Body UpdateAppBody
		}) (*httpapi.Body[App], error) {
			return httpapi.Reply(svc.UpdateApp(ctx, in.ID, AppPatch{Name: in.Body.Name, RedirectURIs: in.Body.RedirectURIs}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-app", Method: http.MethodDelete, Path: "/api/v1/apps/{id}",
		Summary: "Delete an app", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "Its client id stops working, and so do the refresh tokens issued to it."},
		abacus.ScopeAdmin, func(ctx context.Context, in *IDPath) (*struct{}, error) {
			return nil, svc.DeleteApp(ctx, in.ID)
		})
}

// exampleTime is the instant the examples show.
var exampleTime = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// Schema names: identity has its own User, Session, Tokens…, and the API
// document names schemas by Go type name, so these end-user types are
// documented under names of their own (same fields, same JSON).
type (
	endUser               User
	endUserApp            App
	endUserSession        Session
	endUserTokens         Tokens
	endUserSettings       Settings
	endUserTOTPEnrollment TOTPEnrollment
	endUserKeyInfo        KeyInfo
)

func registerSchemaNames(s *httpapi.Server) {
	reg := s.API.OpenAPI().Components.Schemas
	reg.RegisterTypeAlias(reflect.TypeFor[User](), reflect.TypeFor[endUser]())
	reg.RegisterTypeAlias(reflect.TypeFor[App](), reflect.TypeFor[endUserApp]())
	reg.RegisterTypeAlias(reflect.TypeFor[Session](), reflect.TypeFor[endUserSession]())
	reg.RegisterTypeAlias(reflect.TypeFor[Tokens](), reflect.TypeFor[endUserTokens]())
	reg.RegisterTypeAlias(reflect.TypeFor[Settings](), reflect.TypeFor[endUserSettings]())
	reg.RegisterTypeAlias(reflect.TypeFor[TOTPEnrollment](), reflect.TypeFor[endUserTOTPEnrollment]())
	reg.RegisterTypeAlias(reflect.TypeFor[KeyInfo](), reflect.TypeFor[endUserKeyInfo]())
	reg.RegisterTypeAlias(reflect.TypeFor[abacus.List[User]](), reflect.TypeFor[abacus.List[endUser]]())
	reg.RegisterTypeAlias(reflect.TypeFor[abacus.List[App]](), reflect.TypeFor[abacus.List[endUserApp]]())
	reg.RegisterTypeAlias(reflect.TypeFor[abacus.List[Session]](), reflect.TypeFor[abacus.List[endUserSession]]())
}
