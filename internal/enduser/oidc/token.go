package oidc

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// tokenError is an OAuth 2.0 error response (RFC 6749 §5.2): JSON
// {error, error_description}, which client libraries expect, instead of
// problem+json.
type tokenError struct {
	status int
	code   string
	desc   string
	basic  bool // the client tried HTTP Basic: answer with WWW-Authenticate
}

func (e *tokenError) Error() string { return e.code + ": " + e.desc }

func invalidRequest(desc string) *tokenError {
	return &tokenError{status: 400, code: "invalid_request", desc: desc}
}

// writeTokenError answers err in RFC 6749's shape; an unexpected error is
// logged and answered server_error.
func (p *Provider) writeTokenError(w http.ResponseWriter, r *http.Request, err error) {
	te, ok := err.(*tokenError)
	if !ok {
		p.log.ErrorContext(r.Context(), "oidc: token endpoint", "err", err)
		te = &tokenError{status: 500, code: "server_error", desc: "something went wrong on our side; try again"}
	}
	if te.status == http.StatusUnauthorized && te.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidc"`)
	}
	writeJSON(w, te.status, map[string]string{"error": te.code, "error_description": te.desc})
}

// readForm parses a form-encoded POST body and refuses repeated
// parameters (RFC 6749 §3.2).
func readForm(r *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("the form could not be read")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest(k + " is given more than once")
		}
	}
	return r.PostForm, nil
}

// authenticateClient finds the calling app of tenant: HTTP Basic
// (client_secret_basic) or client_id/client_secret in the form
// (client_secret_post), not both. A confidential app must prove its
// secret; a public app only names itself and must not send one. Errors:
// invalid_client (401), invalid_request.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values, tenant string) (enduser.App, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Get("client_secret") != "" || (form.Get("client_id") != "" && form.Get("client_id") != unescape(id)) {
			return enduser.App{}, invalidRequest("use one client authentication method, not two")
		}
		id, secret = unescape(id), unescape(secret) // RFC 6749 §2.3.1 form-encodes both
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	bad := &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed", basic: basic}
	if id == "" {
		return enduser.App{}, bad
	}
	app, err := p.eu.AppByClientID(ctx, tenant, id)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return enduser.App{}, bad
	}
	if err != nil {
		return enduser.App{}, err
	}
	if app.Type == enduser.AppConfidential && !p.eu.CheckAppSecret(app, secret) {
		return enduser.App{}, bad
	}
	if app.Type == enduser.AppPublic && secret != "" {
		return enduser.App{}, bad
	}
	return app, nil
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// tokenResponse is RFC 6749 §5.1 plus the OIDC id_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token is POST {issuer}/token: authorization_code (with the PKCE
// verifier) and refresh_token grants.
func (p *Provider) token(w http.ResponseWriter, r *http.Request, tenant string) {
	tok, app, err := p.grantTokens(r, tenant)
	allowOrigin(w, r, app)
	if err != nil {
		p.writeTokenError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn,
		RefreshToken: tok.RefreshToken, IDToken: tok.IDToken, Scope: tok.Scope})
}

// grantTokens answers a token request, and the app that made it once
// authenticated.
func (p *Provider) grantTokens(r *http.Request, tenant string) (enduser.Tokens, enduser.App, error) {
	form, err := readForm(r)
	if err != nil {
		return enduser.Tokens{}, enduser.App{}, err
	}
	ctx := enduser.SystemContext(r.Context(), tenant)
	app, err := p.authenticateClient(ctx, r, form, tenant)
	if err != nil {
		return enduser.Tokens{}, enduser.App{}, err
	}
	var tok enduser.Tokens
	switch form.Get("grant_type") {
	case "authorization_code":
		tok, err = p.codeGrant(ctx, tenant, app, form)
	case "refresh_token":
		tok, err = p.eu.Refresh(ctx, tenant, form.Get("refresh_token"), app.ClientID)
		err = asGrantError(err)
	case "":
		err = invalidRequest("grant_type is missing")
	default:
		err = &tokenError{status: 400, code: "unsupported_grant_type", desc: "grant_type must be authorization_code or refresh_token"}
	}
	return tok, app, err
}

// allowOrigin lets a browser app read the token endpoint's answer (CORS)
// when the request comes from the origin of one of the app's registered
// redirect URIs: a single-page app redeems its code from there. A form
// POST is a simple request, so no preflight is needed.
func allowOrigin(w http.ResponseWriter, r *http.Request, app enduser.App) {
	origin := r.Header.Get("Origin")
	if origin == "" || app.ID == "" {
		return
	}
	for _, u := range app.RedirectURIs {
		if formTarget(u) == origin {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			return
		}
	}
}

func (p *Provider) codeGrant(ctx context.Context, tenant string, app enduser.App, form url.Values) (enduser.Tokens, error) {
	if form.Get("code") == "" || form.Get("redirect_uri") == "" {
		return enduser.Tokens{}, invalidRequest("code and redirect_uri are required")
	}
	g, err := p.redeemCode(ctx, codeRedeem{tenant: tenant, code: form.Get("code"), redirectURI: form.Get("redirect_uri"),
		verifier: form.Get("code_verifier"), app: app})
	if err != nil {
		return enduser.Tokens{}, err
	}
	sess, err := p.eu.Session(ctx, tenant, g.sessionID)
	if err != nil {
		return enduser.Tokens{}, asGrantError(err)
	}
	tok, err := p.eu.IssueTokens(ctx, sess, app, g.scopes, g.nonce)
	return tok, asGrantError(err)
}

// asGrantError turns the end-user service's refusals (expired, reused or
// unknown refresh token, signed-out session, disabled user) into
// invalid_grant; other errors stay internal.
func asGrantError(err error) error {
	if err == nil {
		return nil
	}
	e, ok := abacus.AsError(err)
	if !ok || e.Kind == abacus.KindInternal {
		return err
	}
	if e.Kind == abacus.KindRateLimited {
		return &tokenError{status: 429, code: "slow_down", desc: e.Message}
	}
	return &tokenError{status: 400, code: "invalid_grant", desc: strings.TrimSpace(e.Message)}
}
