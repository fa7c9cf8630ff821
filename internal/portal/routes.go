package portal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// portalPath is where the portal API lives and the portal cookie goes.
const portalPath = "/api/v1/portal/"

// Cookie carries a portal request's session cookie and whether the
// request came over TLS (set cookies are then Secure).
type Cookie struct {
	Session string `cookie:"abacus_portal" doc:"the portal session cookie that opening a portal link set"`
	CSRF    string `cookie:"abacus_csrf" doc:"echoed in X-CSRF-Token on state-changing requests"`
	secure  bool
}

// Resolve implements huma.Resolver.
func (c *Cookie) Resolve(ctx huma.Context) []error {
	c.secure = ctx.TLS() != nil || strings.EqualFold(ctx.Header("X-Forwarded-Proto"), "https")
	return nil
}

// IDPath is the {id} path parameter.
type IDPath struct {
	ID string `path:"id"`
}

// ListQuery is the cursor pagination of list routes.
type ListQuery struct {
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

// DocQuery picks a document's format and disposition.
type DocQuery struct {
	Format   string `query:"format" enum:"pdf,ubl" doc:"pdf (default) or ubl (UBL 2.1 XML)"`
	Download bool   `query:"download" doc:"answer as an attachment (a file to save) instead of inline"`
}

type docOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Body               []byte
}

func (q DocQuery) format() document.Format {
	if q.Format == "ubl" {
		return document.FormatUBL
	}
	return document.FormatPDF
}

func docOut(b []byte, name string, f document.Format, download bool) *docOutput {
	disp := "inline"
	if download {
		disp = "attachment"
	}
	return &docOutput{ContentType: f.ContentType(), ContentDisposition: disp + `; filename="` + name + `"`, Body: b}
}

// PortalOpenInput exchanges a link's secret for a session.
type PortalOpenInput struct {
	Token string `json:"token" maxLength:"100" doc:"the token of the portal link's fragment (#token=apl_…)"`
}

type sessionOut struct {
	SetCookie []http.Cookie `header:"Set-Cookie"`
	Body      PortalSession
}

type overviewOut struct {
	SetCookie []http.Cookie `header:"Set-Cookie"`
	Body      PortalOverview
}

// RegisterRoutes adds the staff routes (portal links, portal settings),
// the end users' link route and the portal's own routes, which a portal
// session cookie authenticates (registered public: no staff credential
// opens them, and they read nothing without the cookie).
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	staff := []string{"PortalCustomer portal"}
	op := func(id, method, path, summary string, status int, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: staff, DefaultStatus: status, Description: desc}
	}
	links := "/api/v1/customers/{id}/portal-links"
	httpapi.Register(s, op("create-portal-link", http.MethodPost, links, "Create a customer portal link", http.StatusCreated,
		"A link for one customer to open the portal: send the customer to url. It can be opened until expires_at and is "+
			"revoked with DELETE. The secret is in url's fragment and shown only in this answer."),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Body PortalLinkInput
		}) (*httpapi.Body[PortalLinkWithURL], error) {
			return httpapi.Reply(svc.CreateLink(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, op("list-portal-links", http.MethodGet, links, "List a customer's portal links", 0, "Newest first; urls are not shown again."),
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			IDPath
			ListQuery
		}) (*httpapi.Body[abacus.List[PortalLink]], error) {
			return httpapi.Reply(svc.ListLinks(ctx, in.ID, in.Limit, in.Cursor))
		})
	httpapi.Register(s, op("revoke-portal-link", http.MethodDelete, links+"/{link}", "Revoke a portal link", 0,
		"The link cannot be opened any more and every portal session opened from it ends. Idempotent."),
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			IDPath
			Link string `path:"link"`
		}) (*httpapi.Body[PortalLink], error) {
			return httpapi.Reply(svc.RevokeLink(ctx, in.ID, in.Link))
		})
	httpapi.Register(s, op("create-end-user-portal-link", http.MethodPost, "/api/v1/end-user/organizations/{id}/portal-links",
		"Create a portal link for my organization", http.StatusCreated,
		"For an end user holding the owner or billing_admin role of the organization (Authorization: Bearer <end user access token>): "+
			"a portal link for the customer billed for it. The app sends the user's browser to url."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			IDPath
			Body PortalLinkInput
		}) (*httpapi.Body[PortalLinkWithURL], error) {
			return httpapi.Reply(svc.CreateEndUserLink(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, op("get-portal-settings", http.MethodGet, "/api/v1/settings/portal", "Get the customer portal's settings", 0,
		"PortalBranding and what customers may change themselves."),
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[PortalSettings], error) {
			return httpapi.Reply(svc.Settings(ctx))
		})
	httpapi.Register(s, op("put-portal-settings", http.MethodPut, "/api/v1/settings/portal", "Replace the customer portal's settings", 0, ""),
		abacus.ScopeAdmin, func(ctx context.Context, in *httpapi.Body[PortalSettings]) (*httpapi.Body[PortalSettings], error) {
			return httpapi.Reply(svc.PutSettings(ctx, in.Body))
		})

	tags := []string{"PortalCustomer portal (session)"}
	pop := func(id, method, path, summary string, status int, desc string) huma.Operation {
		o := op(id, method, path, summary, status, desc+"\n\nAuthenticated by the portal session cookie (abacus_portal) that "+
			"POST /api/v1/portal/session set; state-changing requests must echo the abacus_csrf cookie in X-CSRF-Token.")
		o.Tags = tags
		o.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound}
		return o
	}
	httpapi.Register(s, pop("open-portal-session", http.MethodPost, portalPath+"session", "Open a portal session from a link", 0,
		"Exchanges the link's token for an HttpOnly, SameSite=Strict session cookie (Secure over TLS) sent to /api/v1/portal/ only."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			Body PortalOpenInput
		}) (*sessionOut, error) {
			sess, secret, err := svc.Open(ctx, in.Body.Token)
			if err != nil {
				return nil, err
			}
			maxAge := int(svc.cfg.SessionTTL.Seconds())
			cookies := []http.Cookie{{Name: httpapi.PortalCookie, Value: secret, Path: portalPath, MaxAge: maxAge,
				HttpOnly: true, Secure: in.secure, SameSite: http.SameSiteStrictMode}}
			if c, ok := csrfCookie(in.Cookie, maxAge); ok {
				cookies = append(cookies, c)
			}
			return &sessionOut{SetCookie: cookies, Body: *sess}, nil
		})
	httpapi.Register(s, pop("close-portal-session", http.MethodDelete, portalPath+"session", "Sign out of the portal", http.StatusNoContent,
		"Ends the session of the cookie and clears it. Idempotent."),
		httpapi.ScopePublic, func(ctx context.Context, in *Cookie) (*struct {
			SetCookie []http.Cookie `header:"Set-Cookie"`
		}, error) {
			if err := svc.SignOut(ctx, in.Session); err != nil {
				return nil, err
			}
			return &struct {
				SetCookie []http.Cookie `header:"Set-Cookie"`
			}{SetCookie: []http.Cookie{{Name: httpapi.PortalCookie, Path: portalPath, MaxAge: -1, HttpOnly: true, Secure: in.secure,
				SameSite: http.SameSiteStrictMode}}}, nil
		})
	httpapi.Register(s, pop("get-portal-overview", http.MethodGet, portalPath+"overview", "The customer's portal overview", 0,
		"PortalBranding, the customer's billing details, subscriptions with their plans and the changes allowed, and each "+
			"entitlement with its usage against the quota of the period."),
		httpapi.ScopePublic, func(ctx context.Context, in *Cookie) (*overviewOut, error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			ov, err := svc.Overview(ctx, sess)
			if err != nil {
				return nil, err
			}
			out := &overviewOut{Body: ov}
			if c, ok := csrfCookie(*in, int(svc.cfg.SessionTTL.Seconds())); ok {
				out.SetCookie = []http.Cookie{c} // a staff sign-out in this browser cleared it
			}
			return out, nil
		})
	httpapi.Register(s, pop("list-portal-invoices", http.MethodGet, portalPath+"invoices", "The customer's invoices", 0,
		"Finalized invoices only (open, paid, void, uncollectible), without lines."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			ListQuery
		}) (*httpapi.Body[abacus.List[billing.Invoice]], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Invoices(ctx, sess, in.Limit, in.Cursor))
		})
	httpapi.Register(s, pop("get-portal-invoice", http.MethodGet, portalPath+"invoices/{id}", "One of the customer's invoices", 0, ""),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
		}) (*httpapi.Body[billing.Invoice], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Invoice(ctx, sess, in.ID))
		})
	httpapi.Register(s, documentOp(pop("get-portal-invoice-document", http.MethodGet, portalPath+"invoices/{id}/document",
		"Download an invoice as PDF or UBL", 0, "")),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
			DocQuery
		}) (*docOutput, error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			b, name, err := svc.InvoiceDocument(ctx, sess, in.ID, in.format())
			if err != nil {
				return nil, err
			}
			return docOut(b, name, in.format(), in.Download), nil
		})
	httpapi.Register(s, pop("create-portal-pay-link", http.MethodPost, portalPath+"invoices/{id}/pay", "Pay an open invoice", http.StatusCreated,
		"The hosted page where the customer pays one of their open invoices through the payment provider's checkout: send the browser to url."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
		}) (*httpapi.Body[PortalPayLink], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.PayLink(ctx, sess, in.ID))
		})
	httpapi.Register(s, pop("list-portal-credit-notes", http.MethodGet, portalPath+"credit-notes", "The customer's credit notes", 0, ""),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			ListQuery
		}) (*httpapi.Body[abacus.List[billing.CreditNote]], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.CreditNotes(ctx, sess, in.Limit, in.Cursor))
		})
	httpapi.Register(s, documentOp(pop("get-portal-credit-note-document", http.MethodGet, portalPath+"credit-notes/{id}/document",
		"Download a credit note as PDF or UBL", 0, "")),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
			DocQuery
		}) (*docOutput, error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			b, name, err := svc.CreditNoteDocument(ctx, sess, in.ID, in.format())
			if err != nil {
				return nil, err
			}
			return docOut(b, name, in.format(), in.Download), nil
		})
	httpapi.Register(s, pop("update-portal-customer", http.MethodPatch, portalPath+"customer", "Change the customer's billing details", 0,
		"Name, e-mail, address and tax id; the fields left out stay."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			Body PortalDetailsInput
		}) (*httpapi.Body[PortalCustomer], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.UpdateDetails(ctx, sess, in.Body))
		})
	httpapi.Register(s, pop("change-portal-plan", http.MethodPost, portalPath+"subscriptions/{id}/change-plan", "Change the plan of a subscription", 0,
		"To one of the plans the tenant offers (settings), now or at the period end as the tenant chose. 403 plan_change_not_allowed when it offers none."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
			Body PortalChangePlanInput
		}) (*httpapi.Body[PortalSubscription], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.ChangePlan(ctx, sess, in.ID, in.Body))
		})
	httpapi.Register(s, pop("cancel-portal-subscription", http.MethodPost, portalPath+"subscriptions/{id}/cancel", "Cancel a subscription at the period end", 0,
		"When the tenant allows it (settings); access lasts until the period ends. 403 cancel_not_allowed otherwise."),
		httpapi.ScopePublic, func(ctx context.Context, in *struct {
			Cookie
			IDPath
		}) (*httpapi.Body[PortalSubscription], error) {
			ctx, sess, err := svc.Authenticate(ctx, in.Session)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Cancel(ctx, sess, in.ID))
		})
}

// csrfCookie returns a new abacus_csrf cookie when the request has none
// (the portal echoes it like the dashboard does); an existing one is kept,
// so a staff session in the same browser keeps working.
func csrfCookie(c Cookie, maxAge int) (http.Cookie, bool) {
	if len(c.CSRF) >= 16 {
		return http.Cookie{}, false
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	return http.Cookie{Name: httpapi.CSRFCookie, Value: base64.RawURLEncoding.EncodeToString(b[:]), Path: "/", MaxAge: maxAge,
		Secure: c.secure, SameSite: http.SameSiteStrictMode}, true
}

// documentOp documents a document route's binary answers.
func documentOp(o huma.Operation) huma.Operation {
	o.Responses = map[string]*huma.Response{"200": {Description: "the document", Content: map[string]*huma.MediaType{
		"application/pdf": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
		"application/xml": {Schema: &huma.Schema{Type: "string"}},
	}}}
	return o
}
