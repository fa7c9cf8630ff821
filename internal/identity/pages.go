package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	htmltemplate "html/template"
	"net/http"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Hosted pages: the targets of e-mailed links when no application URL is
// configured (WithAppURL). Plain HTML, no script, no external assets. A
// GET only shows a form: mail scanners and link previews fetch links,
// and must not use up a single-use token. The POST of the form acts.

//go:embed pagetmpl/page.html
var pageFS embed.FS

var (
	pageTemplate = htmltemplate.Must(htmltemplate.ParseFS(pageFS, "pagetmpl/page.html"))
	// pageCSP allows nothing but the page's own inline style (by hash)
	// and posting its form back to Abacus.
	pageCSP = "default-src 'none'; style-src '" + styleHash() + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// styleHash is the CSP hash of the template's one <style> element.
func styleHash() string {
	b, _ := pageFS.ReadFile("pagetmpl/page.html")
	_, css, _ := strings.Cut(string(b), "<style>")
	css, _, _ = strings.Cut(css, "</style>")
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// hostedPage is one e-mailed link's page: a form, and what its POST does.
type hostedPage struct {
	path, title, intro, button string
	// password labels a password field; empty for none.
	password         string
	passwordRequired bool
	// submit acts on the token (and password) and says what was done.
	submit func(ctx context.Context, svc *Service, token, password string) (string, error)
}

var hostedPages = []hostedPage{
	{path: "/verify-email", title: "Confirm your e-mail address", button: "Confirm my e-mail address",
		intro: "Press the button to confirm that this is your e-mail address.",
		submit: func(ctx context.Context, svc *Service, tok, _ string) (string, error) {
			u, err := svc.VerifyEmail(ctx, tok)
			return fmt.Sprintf("%s is confirmed. You can close this page.", u.Email), err
		}},
	{path: "/reset-password", title: "Choose a new password", button: "Set my new password",
		intro:    "8 to 128 characters, not a common password. Setting it signs you out everywhere.",
		password: "New password", passwordRequired: true,
		submit: func(ctx context.Context, svc *Service, tok, pw string) (string, error) {
			return "Your password is changed and every session is signed out. Sign in with the new password.",
				svc.ResetPassword(ctx, tok, pw)
		}},
	{path: "/accept-invitation", title: "Accept the invitation", button: "Join",
		intro:    "Join the organization that invited you. If you have no account yet, choose a password for it.",
		password: "Password (only for a new account)",
		submit: func(ctx context.Context, svc *Service, tok, pw string) (string, error) {
			_, err := svc.AcceptInvitation(ctx, AcceptInput{Token: tok, Password: pw})
			return "You joined the organization. You can sign in now.", err
		}},
}

// registerPages serves each hosted page at its link's path.
func registerPages(s *httpapi.Server, svc *Service) {
	for _, p := range hostedPages {
		s.Handle("GET "+p.path, httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			svc.showPage(w, p, r.URL.Query().Get("token"))
		}))
		s.Handle("POST "+p.path, httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			svc.submitPage(w, r, p)
		}))
	}
}

// PageView is what a hosted page shows: a title, an intro, and either a
// form (a hidden token, an optional password, one button) or what was
// done, or an error. Enduser's hosted pages show the same page.
type PageView struct {
	Title, Intro, Button, Action, Token, Password, Error, Done string
	Form, PasswordRequired                                     bool
}

func (p hostedPage) view(token string) PageView {
	return PageView{Title: p.title, Intro: p.intro, Button: p.button, Action: p.path, Token: token,
		Password: p.password, PasswordRequired: p.passwordRequired, Form: true}
}

func (s *Service) showPage(w http.ResponseWriter, p hostedPage, token string) {
	v := p.view(token)
	if strings.TrimSpace(token) == "" {
		v.Form, v.Error = false, "This link is incomplete: open the whole link from the e-mail, or ask for a new one."
		s.writePage(w, http.StatusBadRequest, v, 0)
		return
	}
	s.writePage(w, http.StatusOK, v, 0)
}

func (s *Service) submitPage(w http.ResponseWriter, r *http.Request, p hostedPage) {
	if err := r.ParseForm(); err != nil {
		v := p.view("")
		v.Form, v.Error = false, "The form could not be read; open the link from the e-mail again."
		s.writePage(w, http.StatusBadRequest, v, 0)
		return
	}
	tok := r.PostForm.Get("token")
	ctx := withRequest(r.Context(), newRequest(r.RemoteAddr, r.Header, r.UserAgent()))
	done, err := p.submit(ctx, s, tok, r.PostForm.Get("password"))
	v := p.view(tok)
	if err == nil {
		v.Form, v.Done = false, done
		s.writePage(w, http.StatusOK, v, 0)
		return
	}
	e, ok := abacus.AsError(err)
	if !ok || e.Kind == abacus.KindInternal {
		s.log.ErrorContext(ctx, "hosted page", "path", p.path, "err", err)
		v.Error = "Something went wrong on our side; try again in a minute."
		s.writePage(w, http.StatusInternalServerError, v, 0)
		return
	}
	// A bad password can be corrected on the same form; a used, expired
	// or unknown token cannot.
	v.Error, v.Form = e.Message, !strings.HasPrefix(e.Code, "email_token_")
	s.writePage(w, e.Kind.Status(), v, e.RetryAfter)
}

func (s *Service) writePage(w http.ResponseWriter, status int, v PageView, retryAfter int) {
	if err := WritePage(w, status, v, retryAfter); err != nil {
		s.log.Error("rendering hosted page", "err", err)
	}
}

// WritePage answers with the hosted page v: plain HTML, no script, a CSP
// that allows only its own style, never cached or framed, no referrer (a
// token may be in the URL). An error is the template's; the client then
// got a 500.
func WritePage(w http.ResponseWriter, status int, v PageView, retryAfter int) error {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	if retryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(retryAfter))
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
	return nil
}
