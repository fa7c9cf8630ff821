package oidc

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	htmltemplate "html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// The hosted sign-in page: plain HTML, no script, no external asset, a
// strict Content-Security-Policy, a CSRF token bound to a cookie.

//go:embed pagetmpl/page.html
var pageFS embed.FS

var pageTemplate = htmltemplate.Must(htmltemplate.ParseFS(pageFS, "pagetmpl/page.html"))

// styleHash is the CSP hash of the template's one <style> element.
var styleHash = func() string {
	b, _ := pageFS.ReadFile("pagetmpl/page.html")
	_, css, _ := strings.Cut(string(b), "<style>")
	css, _, _ = strings.Cut(css, "</style>")
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

const csrfCookie = "abacus_oidc_csrf"

type pageView struct {
	Title, Error, Message, Action, CSRF, Request, Email string
	Form                                                bool   // the sign-in form
	Confirm                                             string // a one-button form's button
	SignupURL                                           string // the sign-in form's "Create an account" link
	Signup                                              bool   // the sign-up form
	Name, SignInURL                                     string // the sign-up form's name and its link back
	MFAToken                                            string // the second step's form: the sign-in it finishes
	FieldErrors                                         map[string]string
}

// cookiePath scopes the provider's cookies to one tenant's issuer.
func cookiePath(tenant string) string { return "/oidc/" + tenant + "/" }

// secure reports whether cookies must be Secure: over TLS, or when the
// public base URL is https (TLS ended at a proxy).
func (p *Provider) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(p.eu.BaseURL(), "https://")
}

// showSignIn renders the sign-in form for req, with a CSRF token bound to
// a cookie of the issuer's path (double submit: a page of another origin
// can post the form but cannot read or set the cookie).
func (p *Provider) showSignIn(w http.ResponseWriter, r *http.Request, req authRequest, email string, status int, errMsg ...string) {
	v := pageView{Title: "Sign in to " + req.app.Name, Action: "/oidc/" + req.tenant + pathAuthorize,
		CSRF: p.csrfToken(w, r, req.tenant), Request: req.raw, Email: email, Form: true}
	if p.eu.SignupOpen(r.Context(), req.tenant) {
		v.SignupURL = signupLink(req) // not offered where sign-up is closed or by invitation
	}
	if len(errMsg) > 0 {
		v.Error = errMsg[0]
	}
	p.writePage(w, status, v, formTarget(req.redirectURI))
}

// csrfToken returns the browser's CSRF token for tenant's issuer, setting
// the cookie that binds it when there is none yet.
func (p *Provider) csrfToken(w http.ResponseWriter, r *http.Request, tenant string) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	csrf, _ := token.NewOpaque("")
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: csrf, Path: cookiePath(tenant),
		HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	return csrf
}

// checkCSRF reports whether a posted form carries the token of its
// cookie and, when the browser names it, comes from this origin.
func (p *Provider) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf_token")
	return err == nil && form != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) == 1 && p.sameOrigin(r)
}

var errFormExpired = &pageError{http.StatusForbidden, "This form has expired or was not sent from this page; go back to the app and try again."}

// formTarget is the CSP source of the redirect that follows the form's
// POST: browsers apply form-action to it.
func formTarget(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return ""
	}
	src := u.Scheme + ":"
	if u.Host != "" {
		src += "//" + u.Host
	}
	if !cspSource.MatchString(src) {
		return "" // nothing that could end the CSP directive
	}
	return src
}

var cspSource = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:(//[A-Za-z0-9.:\[\]-]+)?$`)

func (p *Provider) errorPage(w http.ResponseWriter, e *pageError) {
	p.writePage(w, e.status, pageView{Title: "Sign-in error", Error: e.msg}, "")
}

func (p *Provider) writePage(w http.ResponseWriter, status int, v pageView, formSrc string) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, v); err != nil {
		p.log.Error("oidc: rendering page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src '"+styleHash+"'; form-action "+
		strings.TrimSpace("'self' "+formSrc)+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// sameOrigin refuses a form posted from another origin when the browser
// says where it came from (Origin), on top of the CSRF token.
func (p *Provider) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	return o == formTarget(p.eu.BaseURL())
}

// signIn is POST {issuer}/authorize: the sign-in form. It re-validates the
// authorization request the form carries, checks the password through
// enduser.SignIn (throttled there), starts the SSO session and redirects
// back with a code.
func (p *Provider) signIn(w http.ResponseWriter, r *http.Request, tenant string) {
	req, ok := p.postedRequest(w, r, tenant)
	if !ok {
		return
	}
	email := r.PostForm.Get("email")
	if challenge := r.PostForm.Get("mfa_token"); challenge != "" {
		p.secondStep(w, r, req, challenge)
		return
	}
	sess, _, err := p.eu.SignIn(r.Context(), tenant, email, r.PostForm.Get("password"), p.eu.DeviceFromRequest(r), req.app.ID)
	if err != nil {
		p.signInFailed(w, r, req, email, err)
		return
	}
	if err := p.startSSO(w, r, tenant, sess); err != nil {
		p.log.ErrorContext(r.Context(), "oidc: starting SSO session", "err", err)
	}
	p.issueCode(w, r, req, sess)
}

// signInFailed shows the form again with what went wrong.
func (p *Provider) signInFailed(w http.ResponseWriter, r *http.Request, req authRequest, email string, err error) {
	var mfa *enduser.MFARequired
	e, ok := abacus.AsError(err)
	switch {
	case errors.As(err, &mfa):
		p.showSecondStep(w, r, req, mfa.Challenge, http.StatusOK)
	case !ok || e.Kind == abacus.KindInternal:
		p.log.ErrorContext(r.Context(), "oidc: sign-in", "err", err)
		p.showSignIn(w, r, req, email, http.StatusInternalServerError, "Something went wrong on our side; try again in a minute.")
	default:
		status := e.Kind.Status()
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
		}
		p.showSignIn(w, r, req, email, status, e.Message)
	}
}

// showSecondStep asks for the authenticator's code (or a recovery code)
// that finishes a sign-in whose password was right.
func (p *Provider) showSecondStep(w http.ResponseWriter, r *http.Request, req authRequest, challenge string, status int, errMsg ...string) {
	v := pageView{Title: "Sign in to " + req.app.Name, Action: "/oidc/" + req.tenant + pathAuthorize,
		CSRF: p.csrfToken(w, r, req.tenant), Request: req.raw, MFAToken: challenge}
	if len(errMsg) > 0 {
		v.Error = errMsg[0]
	}
	p.writePage(w, status, v, formTarget(req.redirectURI))
}

// secondStep is the second step's POST: enduser.SignInMFA checks the code
// (5 wrong codes end the challenge); then, as after a password, the SSO
// session starts and the browser goes back with a code.
func (p *Provider) secondStep(w http.ResponseWriter, r *http.Request, req authRequest, challenge string) {
	sess, _, err := p.eu.SignInMFA(r.Context(), req.tenant, challenge, r.PostForm.Get("code"), p.eu.DeviceFromRequest(r))
	if err != nil {
		e, ok := abacus.AsError(err)
		switch {
		case !ok || e.Kind == abacus.KindInternal:
			p.log.ErrorContext(r.Context(), "oidc: second step", "err", err)
			p.showSecondStep(w, r, req, challenge, http.StatusInternalServerError, "Something went wrong on our side; try again in a minute.")
		case e.Code == "invalid_mfa_code":
			p.showSecondStep(w, r, req, challenge, e.Kind.Status(), e.Message)
		default: // the challenge is spent or expired: start again
			p.showSignIn(w, r, req, "", e.Kind.Status(), e.Message)
		}
		return
	}
	if err := p.startSSO(w, r, req.tenant, sess); err != nil {
		p.log.ErrorContext(r.Context(), "oidc: starting SSO session", "err", err)
	}
	p.issueCode(w, r, req, sess)
}
