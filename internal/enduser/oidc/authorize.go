package oidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// supportedScopes are the scopes a client may ask for; others are
// ignored (OIDC Core §3.1.2.1). A refresh token is issued whatever the
// scopes: offline_access is accepted for clients that ask for it.
var supportedScopes = []string{"openid", "email", "profile", "offline_access"}

// authRequest is a validated authorization request (OIDC Core §3.1.2.1).
type authRequest struct {
	tenant      string
	app         enduser.App
	redirectURI string
	state       string
	nonce       string
	challenge   string // PKCE S256 code_challenge
	scopes      []string
	prompt      map[string]bool
	maxAge      int    // seconds; -1 when not asked
	raw         string // the query as received, carried by the sign-in form
}

// authError is an error answered by redirecting to the request's validated
// redirect_uri (RFC 6749 §4.1.2.1).
type authError struct{ code, desc string }

// pageError is an error shown on an error page: there is no redirect_uri
// it could safely go to.
type pageError struct {
	status int
	msg    string
}

var (
	pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	pkceVerifier  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
)

// parseAuthRequest validates q. Only once the client and redirect_uri are
// known good may an error go back to the client (authError); before that
// it is a pageError.
func (p *Provider) parseAuthRequest(ctx context.Context, tenant string, q url.Values) (authRequest, *authError, *pageError) {
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return authRequest{}, nil, &pageError{http.StatusBadRequest, k + " is given more than once."}
		}
	}
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	if clientID == "" {
		return authRequest{}, nil, &pageError{http.StatusBadRequest, "The request names no application (client_id is missing)."}
	}
	app, err := p.eu.AppByClientID(ctx, tenant, clientID)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return authRequest{}, nil, &pageError{http.StatusBadRequest, "This application is not registered with this sign-in service."}
	}
	if err != nil {
		return authRequest{}, nil, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."}
	}
	if redirect == "" || !app.AllowsRedirect(redirect) {
		return authRequest{}, nil, &pageError{http.StatusBadRequest, "The application asked to return to an address it did not register (redirect_uri)."}
	}
	req := authRequest{tenant: tenant, app: app, redirectURI: redirect, state: q.Get("state"), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), maxAge: -1, prompt: map[string]bool{}, raw: q.Encode()}
	aerr := req.check(q) // before req is returned: check fills scopes, prompt and max_age
	return req, aerr, nil
}

// check validates what may be reported to the client by redirect.
func (req *authRequest) check(q url.Values) *authError {
	for k, v := range q {
		if len(v) > 1 {
			return &authError{"invalid_request", k + " is given more than once"}
		}
	}
	switch {
	case q.Get("request") != "":
		return &authError{"request_not_supported", "request objects are not supported"}
	case q.Get("request_uri") != "":
		return &authError{"request_uri_not_supported", "request_uri is not supported"}
	case q.Get("response_type") != "code":
		return &authError{"unsupported_response_type", "only response_type=code is supported"}
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		return &authError{"invalid_request", "only response_mode=query is supported"}
	case len(req.state) > 1024 || len(req.nonce) > 1024:
		return &authError{"invalid_request", "state and nonce are at most 1024 bytes"}
	}
	for _, s := range strings.Fields(q.Get("scope")) {
		if slices.Contains(supportedScopes, s) && !slices.Contains(req.scopes, s) {
			req.scopes = append(req.scopes, s)
		}
	}
	if !slices.Contains(req.scopes, "openid") {
		return &authError{"invalid_scope", "scope must include openid"}
	}
	if e := req.checkPKCE(q.Get("code_challenge_method")); e != nil {
		return e
	}
	if e := req.checkPrompt(q.Get("prompt")); e != nil {
		return e
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return &authError{"invalid_request", "max_age must be a whole number of seconds"}
		}
		req.maxAge = n
	}
	return nil
}

// checkPKCE: public clients must send an S256 challenge; confidential ones
// may. "plain" is refused: it protects nothing once the request leaks.
func (req *authRequest) checkPKCE(method string) *authError {
	if req.challenge == "" {
		if method != "" {
			return &authError{"invalid_request", "code_challenge_method without code_challenge"}
		}
		if req.app.Type == enduser.AppPublic {
			return &authError{"invalid_request", "PKCE is required for public clients: send code_challenge with code_challenge_method=S256"}
		}
		return nil
	}
	if method != "S256" {
		return &authError{"invalid_request", "code_challenge_method must be S256"}
	}
	if !pkceChallenge.MatchString(req.challenge) {
		return &authError{"invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"}
	}
	return nil
}

func (req *authRequest) checkPrompt(v string) *authError {
	for _, p := range strings.Fields(v) {
		switch p {
		case "none", "login", "consent": // first-party apps: consent is given by signing in
			req.prompt[p] = true
		default:
			return &authError{"invalid_request", fmt.Sprintf("prompt %q is not supported", p)}
		}
	}
	if req.prompt["none"] && len(req.prompt) > 1 {
		return &authError{"invalid_request", "prompt=none cannot be combined with other values"}
	}
	return nil
}

// validAuthRequest parses q; when it is not valid, it answers with an
// error page or, once the redirect_uri is known good, a redirect.
func (p *Provider) validAuthRequest(w http.ResponseWriter, r *http.Request, tenant string, q url.Values) (authRequest, bool) {
	req, aerr, perr := p.parseAuthRequest(r.Context(), tenant, q)
	switch {
	case perr != nil:
		p.errorPage(w, perr)
	case aerr != nil:
		p.redirectError(w, r, req, aerr)
	}
	return req, perr == nil && aerr == nil
}

// redirect sends the browser back to the request's validated redirect_uri
// with params, state and iss (RFC 9207).
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", p.eu.Issuer(req.tenant))
	u, _ := url.Parse(req.redirectURI) // matched against the registered list, which was validated
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, e *authError) {
	p.redirect(w, r, req, url.Values{"error": {e.code}, "error_description": {e.desc}})
}

// authorize is GET {issuer}/authorize: straight back with a code when the
// browser's SSO session is live (single sign-on), else the sign-in page.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request, tenant string) {
	req, ok := p.validAuthRequest(w, r, tenant, r.URL.Query())
	if !ok {
		return
	}
	sess, ok, err := p.ssoSession(r, tenant)
	if err != nil {
		p.log.ErrorContext(r.Context(), "oidc: reading SSO session", "err", err)
		p.errorPage(w, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."})
		return
	}
	if ok && req.maxAge >= 0 && p.clock.Now().Sub(sess.CreatedAt) > time.Duration(req.maxAge)*time.Second {
		ok = false // signed in too long ago for this client
	}
	switch {
	case req.prompt["none"] && !ok:
		p.redirectError(w, r, req, &authError{"login_required", "the end user is not signed in"})
	case ok && !req.prompt["login"]:
		p.issueCode(w, r, req, sess)
	default:
		p.showSignIn(w, r, req, "", http.StatusOK)
	}
}

// issueCode stores a code for sess and redirects back with it.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, req authRequest, sess enduser.Session) {
	code, err := p.newCode(r.Context(), req, sess)
	if err != nil {
		p.log.ErrorContext(r.Context(), "oidc: storing code", "err", err)
		p.redirectError(w, r, req, &authError{"server_error", "the code could not be stored; try again"})
		return
	}
	p.redirect(w, r, req, url.Values{"code": {code}})
}
