package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// Hosted sign-up: the "Create an account" path of the sign-in page. It
// carries the authorization request like the sign-in form does and signs
// up through enduser.SignUp, so the tenant's policy, allowed domains,
// password policy, throttling and the verification mail are the same as
// through the API.

const pathSignup = "/signup"

// signupFields are the form's fields, in the order a problem is shown.
var signupFields = []string{"name", "email", "password"}

// signupLink is the sign-in page's link to the sign-up form for req.
func signupLink(req authRequest) string {
	return "/oidc/" + req.tenant + pathSignup + "?" + req.raw
}

// showSignup renders the sign-up form; fieldErrs are shown next to their
// field, errMsg above the form.
func (p *Provider) showSignup(w http.ResponseWriter, r *http.Request, req authRequest, in enduser.SignUpInput, status int, errMsg string, fieldErrs map[string]string) {
	v := pageView{Title: "Create an account for " + req.app.Name, Action: "/oidc/" + req.tenant + pathSignup,
		CSRF: p.csrfToken(w, r, req.tenant), Request: req.raw, Email: in.Email, Name: in.Name, Signup: true,
		Error: errMsg, FieldErrors: fieldErrs, SignInURL: "/oidc/" + req.tenant + pathAuthorize + "?" + req.raw}
	p.writePage(w, status, v, formTarget(req.redirectURI))
}

// signupPage is GET {issuer}/signup: the form, for a valid authorization
// request.
func (p *Provider) signupPage(w http.ResponseWriter, r *http.Request, tenant string) {
	req, ok := p.validAuthRequest(w, r, tenant, r.URL.Query())
	if !ok {
		return
	}
	p.showSignup(w, r, req, enduser.SignUpInput{}, http.StatusOK, "", nil)
}

// signUp is POST {issuer}/signup: it creates the account, starts the SSO
// session and redirects back with a code, or, when the tenant wants a
// verified address first, asks the user to open the mailed link.
func (p *Provider) signUp(w http.ResponseWriter, r *http.Request, tenant string) {
	req, ok := p.postedRequest(w, r, tenant)
	if !ok {
		return
	}
	in := enduser.SignUpInput{Email: r.PostForm.Get("email"), Password: r.PostForm.Get("password"), Name: r.PostForm.Get("name")}
	sess, u, err := p.eu.SignUp(r.Context(), req.app, in, p.eu.DeviceFromRequest(r))
	switch {
	case errors.Is(err, enduser.ErrVerifyEmail):
		p.writePage(w, http.StatusOK, pageView{Title: "Check your mailbox",
			Message: "We sent a link to " + u.Email + ". Open it to confirm your address, then sign in to " + req.app.Name + "."}, "")
	case err != nil:
		p.signupFailed(w, r, req, in, err)
	default:
		if err := p.startSSO(w, r, tenant, sess); err != nil {
			p.log.ErrorContext(r.Context(), "oidc: starting SSO session", "err", err)
		}
		p.issueCode(w, r, req, sess)
	}
}

// postedRequest reads a hosted form: CSRF, then the authorization request
// it carries, re-validated.
func (p *Provider) postedRequest(w http.ResponseWriter, r *http.Request, tenant string) (authRequest, bool) {
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, &pageError{http.StatusBadRequest, "The form could not be read; go back to the app and try again."})
		return authRequest{}, false
	}
	if !p.checkCSRF(r) {
		p.errorPage(w, errFormExpired)
		return authRequest{}, false
	}
	q, err := url.ParseQuery(r.PostForm.Get("request"))
	if err != nil {
		p.errorPage(w, &pageError{http.StatusBadRequest, "The sign-in request is damaged; go back to the app and try again."})
		return authRequest{}, false
	}
	return p.validAuthRequest(w, r, tenant, q)
}

// signupFailed shows the form again, each field's problem next to it.
func (p *Provider) signupFailed(w http.ResponseWriter, r *http.Request, req authRequest, in enduser.SignUpInput, err error) {
	e, ok := abacus.AsError(err)
	if !ok || e.Kind == abacus.KindInternal {
		p.log.ErrorContext(r.Context(), "oidc: sign-up", "err", err)
		p.showSignup(w, r, req, in, http.StatusInternalServerError, "Something went wrong on our side; try again in a minute.", nil)
		return
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	fieldErrs := map[string]string{}
	for _, f := range e.Fields {
		for _, name := range signupFields {
			if f.Field == name && fieldErrs[name] == "" {
				fieldErrs[name] = e.Message // the message says what to change; the field note is terse
			}
		}
	}
	msg := ""
	if len(fieldErrs) == 0 {
		msg = e.Message
	}
	p.showSignup(w, r, req, in, e.Kind.Status(), msg, fieldErrs)
}
