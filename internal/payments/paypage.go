package payments

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	htmltemplate "html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// The hosted "pay this invoice" page: GET /pay/{token} shows the invoice a
// signed pay link names (CreatePayLink) with its PDF; its form POSTs back
// to the same path, which starts the gateway's hosted checkout and
// answers 303 to it. A GET never starts anything at the gateway (mail
// scanners and link previews fetch links). Plain HTML, no script, no
// external assets.

//go:embed pagetmpl/pay.html
var payFS embed.FS

var payTemplate = htmltemplate.Must(htmltemplate.ParseFS(payFS, "pagetmpl/pay.html"))

// CheckoutOrigins are where the pay page's form may lead: its own origin
// and, through the 303 its POST answers, the gateway's hosted checkout.
// Browsers apply form-action to the redirect too, so the identity pages'
// form-action 'self' would block it.
var CheckoutOrigins = []string{"https://checkout.stripe.com"}

// payCSP allows nothing but the page's own inline style (by hash), its
// form back to Abacus and on to the hosted checkout.
var payCSP = "default-src 'none'; style-src '" + payStyleHash() + "'; form-action 'self' " + strings.Join(CheckoutOrigins, " ") +
	"; frame-ancestors 'none'; base-uri 'none'"

// payStyleHash is the CSP hash of the template's one <style> element.
func payStyleHash() string {
	b, _ := payFS.ReadFile("pagetmpl/pay.html")
	_, css, _ := strings.Cut(string(b), "<style>")
	css, _, _ = strings.Cut(css, "</style>")
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

type payPageView struct {
	Invoice           *PayView
	Action, PDF, Next string
	Error, Done       string
}

type payPage struct {
	svc *Service
	log *slog.Logger
}

// PayPageRoutes returns the hosted pay page's handlers by their
// http.ServeMux pattern: the page, its form's POST and the invoice's PDF.
func PayPageRoutes(svc *Service, log *slog.Logger) map[string]http.Handler {
	p := &payPage{svc: svc, log: log}
	return map[string]http.Handler{
		"GET /pay/{token}":             http.HandlerFunc(p.show),
		"POST /pay/{token}":            http.HandlerFunc(p.checkout),
		"GET /pay/{token}/invoice.pdf": http.HandlerFunc(p.pdf),
	}
}

// registerPayPage serves the hosted pay page (public: the signed link is
// the credential).
func registerPayPage(s *httpapi.Server, svc *Service) {
	for pattern, h := range PayPageRoutes(svc, s.Logger()) {
		s.Handle(pattern, httpapi.ScopePublic, h)
	}
}

func (p *payPage) view(r *http.Request) payPageView {
	path := "/pay/" + r.PathValue("token")
	return payPageView{Action: path, PDF: path + "/invoice.pdf"}
}

func (p *payPage) show(w http.ResponseWriter, r *http.Request) {
	v := p.view(r)
	inv, err := p.svc.PayPage(r.Context(), r.PathValue("token"))
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	v.Invoice = &inv
	if r.URL.Query().Get("checkout") == "done" && inv.Payable {
		v.Done = "Thank you. Your payment is being confirmed; this page shows the invoice as paid once the payment provider confirms it."
	}
	p.write(w, http.StatusOK, v)
}

func (p *payPage) checkout(w http.ResponseWriter, r *http.Request) {
	v := p.view(r)
	hs, err := p.svc.PayCheckout(r.Context(), r.PathValue("token"))
	if err != nil {
		if inv, err2 := p.svc.PayPage(r.Context(), r.PathValue("token")); err2 == nil {
			v.Invoice = &inv
		}
		p.fail(w, r, v, err)
		return
	}
	// 303: the browser follows with a GET to the hosted checkout.
	v.Next = hs.URL
	w.Header().Set("Location", hs.URL)
	p.write(w, http.StatusSeeOther, v)
}

func (p *payPage) pdf(w http.ResponseWriter, r *http.Request) {
	b, name, err := p.svc.PayPDF(r.Context(), r.PathValue("token"))
	if err != nil {
		p.fail(w, r, p.view(r), err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", `inline; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// fail shows err on the page: a person reads it, so no problem+json.
func (p *payPage) fail(w http.ResponseWriter, r *http.Request, v payPageView, err error) {
	e, ok := abacus.AsError(err)
	if !ok || e.Kind == abacus.KindInternal {
		p.log.ErrorContext(r.Context(), "pay page", "err", err)
		v.Error = "Something went wrong on our side; try again in a minute."
		p.write(w, http.StatusInternalServerError, v)
		return
	}
	v.Error = e.Message
	if e.Kind == abacus.KindNotFound {
		v.Invoice, v.Error = nil, "This invoice does not exist any more. Ask the seller for a new link."
	}
	p.write(w, e.Kind.Status(), v)
}

// write answers the page: never cached, framed or sent on as a referrer
// (the link's token is in the URL).
func (p *payPage) write(w http.ResponseWriter, status int, v payPageView) {
	var b bytes.Buffer
	if err := payTemplate.Execute(&b, v); err != nil {
		p.log.Error("rendering the pay page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", payCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
