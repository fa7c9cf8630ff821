package oidc

import (
	"net/http"
	"net/url"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// endSession is {issuer}/end-session (OpenID Connect RP-Initiated Logout
// 1.0). It ends the browser's SSO session (the end-user session is
// revoked, so every app's tokens of it stop working) and returns to
// post_logout_redirect_uri when that is one of the client's registered
// redirect URIs, else shows a page. The client is named by client_id or
// by id_token_hint's audience.
//
// A GET whose id_token_hint names the browser's current session signs out
// at once. Otherwise (no hint, or a hint of another session) the end user
// is asked first (§2: any page could send the browser here): a
// CSRF-protected form whose POST signs out.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, &pageError{http.StatusBadRequest, "The sign-out request could not be read."})
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if !p.checkCSRF(r) {
			p.errorPage(w, errFormExpired)
			return
		}
		if q, _ = url.ParseQuery(r.PostForm.Get("request")); q == nil {
			q = url.Values{}
		}
	}
	req, perr := p.logoutRequest(r, tenant, q)
	if perr != nil {
		p.errorPage(w, perr)
		return
	}
	sess, signedIn, err := p.ssoSession(r, tenant)
	if err != nil {
		p.log.ErrorContext(r.Context(), "oidc: end-session", "err", err)
		p.errorPage(w, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."})
		return
	}
	if signedIn && r.Method == http.MethodGet && req.hintSession != sess.ID {
		p.writePage(w, http.StatusOK, pageView{Title: "Sign out?", Message: "Do you want to sign out of every app of this service in this browser?",
			Action: "/oidc/" + tenant + pathEndSession, CSRF: p.csrfToken(w, r, tenant), Request: q.Encode(), Confirm: "Sign out"}, "")
		return
	}
	if err := p.endSSO(w, r, tenant); err != nil {
		p.log.ErrorContext(r.Context(), "oidc: end-session", "err", err)
		p.errorPage(w, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."})
		return
	}
	p.loggedOut(w, r, req)
}

// logoutRequest is a validated end-session request.
type logoutRequest struct {
	target      string // post_logout_redirect_uri, registered by the client; may be empty
	state       string
	hintSession string // sid of a valid id_token_hint
}

// loggedOut returns to the validated post-logout URI with state, or says
// the end user is signed out.
func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request, req logoutRequest) {
	if req.target == "" {
		p.writePage(w, http.StatusOK, pageView{Title: "Signed out", Message: "You are signed out. You can close this page."}, "")
		return
	}
	u, _ := url.Parse(req.target)
	if req.state != "" {
		v := u.Query()
		v.Set("state", req.state)
		u.RawQuery = v.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// logoutRequest validates q: post_logout_redirect_uri needs a client
// (client_id, or the audience of a valid id_token_hint of this issuer)
// that registered it. Without one, nothing is redirected to.
func (p *Provider) logoutRequest(r *http.Request, tenant string, q url.Values) (logoutRequest, *pageError) {
	req := logoutRequest{target: q.Get("post_logout_redirect_uri"), state: q.Get("state")}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		c, err := p.eu.VerifyIDTokenHint(r.Context(), tenant, hint)
		if err != nil || (clientID != "" && clientID != c.Audience) {
			return req, &pageError{http.StatusBadRequest, "The sign-out request carries a token this service did not issue."}
		}
		clientID, req.hintSession = c.Audience, c.SessionID
	}
	if req.target == "" {
		return req, nil
	}
	if clientID == "" {
		return req, &pageError{http.StatusBadRequest, "The sign-out request names no application (client_id or id_token_hint)."}
	}
	app, err := p.eu.AppByClientID(enduser.SystemContext(r.Context(), tenant), tenant, clientID)
	if abacus.ErrorKind(err) == abacus.KindNotFound || (err == nil && !app.AllowsRedirect(req.target)) {
		return req, &pageError{http.StatusBadRequest, "The application asked to return to an address it did not register (post_logout_redirect_uri)."}
	}
	if err != nil {
		return req, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."}
	}
	return req, nil
}
