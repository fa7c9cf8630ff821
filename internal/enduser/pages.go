package enduser

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

// Hosted pages: where e-mailed links open when the tenant set no app_url,
// under the tenant's issuer, drawn by identity's page (identity.WritePage):
// plain HTML, no script; a GET only shows a form (mail scanners fetch
// links and must not use up a single-use token), the form's POST acts.
// Magic links have no hosted page: without an app_url their mail carries
// only the code.

type hostedPage struct {
	page, title, intro, button, password string
	submit                               func(ctx context.Context, svc *Service, tenant, token, password string) (string, error)
}

var hostedPages = []hostedPage{
	{page: "verify-email", title: "Confirm your e-mail address", button: "Confirm my e-mail address",
		intro: "Press the button to confirm that this is your e-mail address.",
		submit: func(ctx context.Context, svc *Service, tenant, tok, _ string) (string, error) {
			u, err := svc.VerifyEmail(ctx, tenant, tok)
			return fmt.Sprintf("%s is confirmed. You can close this page.", u.Email), err
		}},
	{page: "reset-password", title: "Choose a new password", button: "Set my new password", password: "New password",
		intro: "8 to 128 characters, not a common password. Setting it signs you out everywhere.",
		submit: func(ctx context.Context, svc *Service, tenant, tok, pw string) (string, error) {
			_, err := svc.ResetPassword(ctx, tenant, tok, pw)
			return "Your password is changed and every session is signed out. Sign in with the new password.", err
		}},
}

// registerPages serves the hosted pages at /oidc/{tenant}/<page>.
func registerPages(s *httpapi.Server, svc *Service) {
	for _, p := range hostedPages {
		s.Handle("GET /oidc/{tenant}/"+p.page, httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := p.view(r.PathValue("tenant"), r.URL.Query().Get("token"))
			status := http.StatusOK
			if strings.TrimSpace(v.Token) == "" {
				v.Form, v.Error, status = false, "This link is incomplete: open the whole link from the e-mail, or ask for a new one.", http.StatusBadRequest
			}
			svc.writePage(w, status, v, 0)
		}))
		s.Handle("POST /oidc/{tenant}/"+p.page, httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			svc.submitPage(w, r, p)
		}))
	}
}

func (p hostedPage) view(tenant, token string) identity.PageView {
	return identity.PageView{Title: p.title, Intro: p.intro, Button: p.button, Action: "/oidc/" + tenant + "/" + p.page, Token: token,
		Password: p.password, PasswordRequired: p.password != "", Form: true}
}

func (s *Service) submitPage(w http.ResponseWriter, r *http.Request, p hostedPage) {
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		v := p.view(tenant, "")
		v.Form, v.Error = false, "The form could not be read; open the link from the e-mail again."
		s.writePage(w, http.StatusBadRequest, v, 0)
		return
	}
	tok := r.PostForm.Get("token")
	done, err := p.submit(r.Context(), s, tenant, tok, r.PostForm.Get("password"))
	v := p.view(tenant, tok)
	if err == nil {
		v.Form, v.Done = false, done
		s.writePage(w, http.StatusOK, v, 0)
		return
	}
	e, ok := abacus.AsError(err)
	if !ok || e.Kind == abacus.KindInternal {
		s.log.ErrorContext(r.Context(), "end-user hosted page", "page", p.page, "err", err)
		v.Error = "Something went wrong on our side; try again in a minute."
		s.writePage(w, http.StatusInternalServerError, v, 0)
		return
	}
	// A bad password can be corrected on the same form; a used, expired
	// or unknown token cannot.
	v.Error, v.Form = e.Message, e.Code != errLinkInvalid.Code
	s.writePage(w, e.Kind.Status(), v, e.RetryAfter)
}

func (s *Service) writePage(w http.ResponseWriter, status int, v identity.PageView, retryAfter int) {
	if err := identity.WritePage(w, status, v, retryAfter); err != nil {
		s.log.Error("rendering end-user hosted page", "err", err)
	}
}
