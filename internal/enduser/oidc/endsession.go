package oidc

import (
	"net/http"
	"net/url"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// endSession is GET|POST {issuer}/end-session (OpenID Connect
// RP-Initiated Logout 1.0): it ends the browser's SSO session (the
// end-user session is revoked, so every app's tokens of it stop working)
// and returns to post_logout_redirect_uri when that is one of the
// client's registered redirect URIs, else shows a page. The client is
// named by client_id or by id_token_hint's audience.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, &pageError{http.StatusBadRequest, "The sign-out request could not be read."})
		return
	}
	q := r.Form
	target, perr := p.postLogoutTarget(r, tenant, q)
	if perr != nil {
		p.errorPage(w, perr)
		return
	}
	if err := p.endSSO(w, r, tenant); err != nil {
		p.log.ErrorContext(r.Context(), "oidc: end-session", "err", err)
		p.errorPage(w, &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."})
		return
	}
	if target == "" {
		p.writePage(w, http.StatusOK, pageView{Title: "Signed out", Message: "You are signed out. You can close this page."}, "", 0)
		return
	}
	u, _ := url.Parse(target)
	if s := q.Get("state"); s != "" {
		v := u.Query()
		v.Set("state", s)
		u.RawQuery = v.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// postLogoutTarget validates post_logout_redirect_uri: it needs a client
// (client_id, or the audience of a valid id_token_hint of this issuer)
// that registered it. Without one, nothing is redirected to.
func (p *Provider) postLogoutTarget(r *http.Request, tenant string, q url.Values) (string, *pageError) {
	target, clientID := q.Get("post_logout_redirect_uri"), q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		c, err := p.eu.VerifyIDTokenHint(r.Context(), tenant, hint)
		if err != nil || (clientID != "" && clientID != c.Audience) {
			return "", &pageError{http.StatusBadRequest, "The sign-out request carries a token this service did not issue."}
		}
		clientID = c.Audience
	}
	if target == "" {
		return "", nil
	}
	if clientID == "" {
		return "", &pageError{http.StatusBadRequest, "The sign-out request names no application (client_id or id_token_hint)."}
	}
	app, err := p.eu.AppByClientID(enduser.SystemContext(r.Context(), tenant), tenant, clientID)
	if abacus.ErrorKind(err) == abacus.KindNotFound || (err == nil && !app.AllowsRedirect(target)) {
		return "", &pageError{http.StatusBadRequest, "The application asked to return to an address it did not register (post_logout_redirect_uri)."}
	}
	if err != nil {
		return "", &pageError{http.StatusInternalServerError, "Something went wrong on our side; try again in a minute."}
	}
	return target, nil
}
