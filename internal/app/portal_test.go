package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// portalBrowser is a browser holding a portal session: its own cookie
// jar, the CSRF header on state-changing requests, as the portal page does.
type portalBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newPortalBrowser(t *testing.T, base string) *portalBrowser {
	jar, _ := cookiejar.New(nil)
	return &portalBrowser{t: t, base: base, c: &http.Client{Jar: jar}}
}

func (b *portalBrowser) do(method, path string, body any) response {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, b.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != "GET" {
		u, _ := url.Parse(b.base + "/")
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == httpapi.CSRFCookie {
				req.Header.Set(httpapi.CSRFHeader, c.Value)
			}
		}
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: out}
}

// open opens a portal link's URL the way the portal page does: the token
// from the fragment, posted.
func (b *portalBrowser) open(link string) response {
	b.t.Helper()
	_, tok, ok := strings.Cut(link, "#token=")
	if !ok || !strings.HasPrefix(link, b.base+"/portal/open#") {
		b.t.Fatalf("portal link %q", link)
	}
	return b.do("POST", "/api/v1/portal/session", map[string]any{"token": tok})
}

// TestCustomerPortal: a portal link opens a session for exactly one
// customer of one tenant; the portal shows that customer's plan, usage
// against its quota, finalized invoices with PDF and UBL, and lets it
// change its billing details and, as the tenant allows, its plan; it
// never shows another customer's objects (of the same tenant or another)
// and answers for them exactly as for made-up ids; revoking the link ends
// the session; cookies are HttpOnly and SameSite, writes need the CSRF
// header.
func TestCustomerPortal(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			post := a.post
			post("/api/v1/meters", map[string]any{"slug": "calls", "eventType": "call", "aggregation": "SUM", "valueProperty": "$.n"})
			post("/api/v1/features", map[string]any{"key": "calls", "name": "Calls", "kind": "metered", "meter_slug": "calls", "limit": "100", "enforcement": "soft"})
			var plans []string
			for _, key := range []string{"basic", "pro"} {
				pid := post("/api/v1/plans", map[string]any{"key": key, "name": strings.ToUpper(key[:1]) + key[1:]})["id"].(string)
				v := post("/api/v1/plans/"+pid+"/versions", map[string]any{
					"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
					"entitlements": []any{map[string]any{"feature": "calls"}},
					"charges":      []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "10.00"}}},
				})
				post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
				plans = append(plans, pid)
			}
			startAt := time.Now().UTC().Add(-3 * 24 * time.Hour)
			var cus, subs []string
			for _, name := range []string{"Ada", "Bob"} {
				c := post("/api/v1/customers", map[string]any{"name": name, "currency": "EUR", "subjects": []string{strings.ToLower(name) + "-app"}})
				cus = append(cus, c["id"].(string))
				subs = append(subs, post("/api/v1/subscriptions", map[string]any{"customer_id": c["id"], "plan_id": plans[0],
					"start_at": startAt, "skip_trial": true})["id"].(string))
			}
			// Each customer's in-advance invoice, finalized (now, or by the cycle).
			var invs []string
			for _, sub := range subs {
				inv := waitForInvoices(t, a, sub, 1)[0]
				if inv.Status != "draft" {
					invs = append(invs, inv.ID)
					continue
				}
				if r := a.do("POST", "/api/v1/invoices/"+inv.ID+"/finalize", a.key, nil); r.status != 200 {
					t.Fatalf("finalize: %d %s", r.status, r.body)
				}
				invs = append(invs, inv.ID)
			}
			creditNote := post("/api/v1/credit-notes", map[string]any{"invoice_id": invs[1], "reason": "goodwill",
				"amount": "1.00"})
			ev := fmt.Sprintf(`[{"specversion":"1.0","id":"p-1","source":"test","type":"call","subject":"ada-app","time":%q,"data":{"n":42}}]`,
				time.Now().UTC().Format(time.RFC3339Nano))
			if r := a.postEvents(ev); r.status != 204 {
				t.Fatalf("ingest: %d %s", r.status, r.body)
			}

			// Links: validation, creation, the URL shown once.
			if r := a.do("POST", "/api/v1/customers/"+cus[0]+"/portal-links", a.key, map[string]any{"ttl_seconds": 5, "return_url": "javascript:alert(1)"}); r.status != 400 ||
				!strings.Contains(string(r.body), "ttl_seconds") || !strings.Contains(string(r.body), "return_url") {
				t.Fatalf("bad link input: %d %s", r.status, r.body)
			}
			linkA := post("/api/v1/customers/"+cus[0]+"/portal-links", map[string]any{"return_url": "https://app.example.com/account"})
			linkB := post("/api/v1/customers/"+cus[1]+"/portal-links", map[string]any{})
			listed := a.do("GET", "/api/v1/customers/"+cus[0]+"/portal-links", a.key, nil)
			if listed.status != 200 || strings.Contains(string(listed.body), "apl_") || !strings.Contains(string(listed.body), linkA["id"].(string)) ||
				strings.Contains(string(listed.body), linkB["id"].(string)) {
				t.Fatalf("links of Ada: %d %s", listed.status, listed.body)
			}

			ada := newPortalBrowser(t, a.base)
			if r := ada.do("GET", "/api/v1/portal/overview", nil); r.status != 401 || problemCode(r.body) != "portal_session_required" {
				t.Fatalf("overview without a session: %d %s", r.status, r.body)
			}
			if r := ada.do("POST", "/api/v1/portal/session", map[string]any{"token": "apl_madeup"}); r.status != 401 || problemCode(r.body) != "portal_link_invalid" {
				t.Fatalf("made-up link: %d %s", r.status, r.body)
			}
			r := ada.open(linkA["url"].(string))
			if r.status != 200 {
				t.Fatalf("open: %d %s", r.status, r.body)
			}
			var portalCookie *http.Cookie
			for _, c := range r.header.Values("Set-Cookie") {
				if strings.HasPrefix(c, httpapi.PortalCookie+"=") {
					parsed, _ := http.ParseSetCookie(c)
					portalCookie = parsed
				}
			}
			if portalCookie == nil || !portalCookie.HttpOnly || portalCookie.SameSite != http.SameSiteStrictMode || portalCookie.Path != "/api/v1/portal/" {
				t.Fatalf("portal cookie: %+v", portalCookie)
			}

			// The overview: Ada, her plan, her usage against the quota.
			var ov map[string]any
			waitFor(t, func() bool {
				ov = ada.do("GET", "/api/v1/portal/overview", nil).json(t)
				ents, _ := ov["entitlements"].([]any)
				return len(ents) == 1 && ents[0].(map[string]any)["used"] == "42"
			})
			ent := ov["entitlements"].([]any)[0].(map[string]any)
			if ov["customer"].(map[string]any)["id"] != cus[0] || ent["limit"] != "100" || ov["return_url"] != "https://app.example.com/account" {
				t.Fatalf("overview: %v", ov)
			}
			s0 := ov["subscriptions"].([]any)[0].(map[string]any)
			if s0["id"] != subs[0] || s0["plan"].(map[string]any)["key"] != "basic" || s0["can_change_plan"] != false || s0["can_cancel"] != false {
				t.Fatalf("subscription: %v", s0)
			}

			// Invoices: Ada's only, with PDF and UBL.
			list := ada.do("GET", "/api/v1/portal/invoices", nil)
			if list.status != 200 || !strings.Contains(string(list.body), invs[0]) || strings.Contains(string(list.body), invs[1]) {
				t.Fatalf("Ada's invoices: %d %s", list.status, list.body)
			}
			if r := ada.do("GET", "/api/v1/portal/invoices/"+invs[0]+"/document?format=pdf&download=true", nil); r.status != 200 ||
				!strings.HasPrefix(string(r.body), "%PDF") || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") {
				t.Fatalf("pdf: %d %s %.400s", r.status, r.header, r.body)
			}
			if r := ada.do("GET", "/api/v1/portal/invoices/"+invs[0]+"/document?format=ubl", nil); r.status != 200 && r.status != 422 {
				t.Fatalf("ubl: %d %s", r.status, r.body) // 422 when the tenant's settings lack what Peppol needs
			}
			// Nothing of Bob's: his invoice, credit note, subscription answer as made-up ids do.
			for _, c := range []struct{ method, path, fake string }{
				{"GET", "/api/v1/portal/invoices/" + invs[1], "/api/v1/portal/invoices/inv_00000000000000000000000000"},
				{"GET", "/api/v1/portal/invoices/" + invs[1] + "/document", "/api/v1/portal/invoices/inv_00000000000000000000000000/document"},
				{"GET", "/api/v1/portal/credit-notes/" + creditNote["id"].(string) + "/document", "/api/v1/portal/credit-notes/cn_00000000000000000000000000/document"},
				{"POST", "/api/v1/portal/subscriptions/" + subs[1] + "/cancel", "/api/v1/portal/subscriptions/sub_00000000000000000000000000/cancel"},
				{"POST", "/api/v1/portal/subscriptions/" + subs[1] + "/change-plan", "/api/v1/portal/subscriptions/sub_00000000000000000000000000/change-plan"},
			} {
				var body any
				if c.method == "POST" {
					body = map[string]any{"plan": "pro"}
				}
				got, want := ada.do(c.method, c.path, body), ada.do(c.method, c.fake, body)
				if got.status != 404 || got.status != want.status || problemCode(got.body) != problemCode(want.body) {
					t.Errorf("Ada: %s %s: %d %s; a made-up id: %d %s", c.method, c.path, got.status, got.body, want.status, want.body)
				}
			}
			if r := ada.do("GET", "/api/v1/portal/credit-notes", nil); r.status != 200 || strings.Contains(string(r.body), creditNote["id"].(string)) {
				t.Fatalf("Ada's credit notes show Bob's: %s", r.body)
			}

			// Billing details: a field error names the field; a change lands on the customer.
			if r := ada.do("PATCH", "/api/v1/portal/customer", map[string]any{"address": map[string]any{"country": "XX"}}); r.status != 400 ||
				!strings.Contains(string(r.body), "address.country") {
				t.Fatalf("bad country: %d %s", r.status, r.body)
			}
			if r := ada.do("PATCH", "/api/v1/portal/customer", map[string]any{"tax_id": "DE811907980", "address": map[string]any{"line1": "Hauptstraße 1",
				"city": "Berlin", "postal_code": "10115", "country": "DE"}}); r.status != 200 {
				t.Fatalf("details: %d %s", r.status, r.body)
			}
			if c := a.do("GET", "/api/v1/customers/"+cus[0], a.key, nil).json(t); c["tax_id"] != "DE811907980" {
				t.Fatalf("customer after the portal's change: %v", c)
			}
			// CSRF: a write without the header is refused.
			req, _ := http.NewRequest("PATCH", a.base+"/api/v1/portal/customer", strings.NewReader(`{"name":"Mallory"}`))
			req.Header.Set("Content-Type", "application/json")
			if res, err := ada.c.Do(req); err != nil || res.StatusCode != 403 {
				t.Fatalf("write without the CSRF header: %v %v", res, err)
			} else {
				res.Body.Close()
			}

			// Plan changes and cancellation only as the tenant allows.
			if r := ada.do("POST", "/api/v1/portal/subscriptions/"+subs[0]+"/change-plan", map[string]any{"plan": "pro"}); r.status != 403 {
				t.Fatalf("change without permission: %d %s", r.status, r.body)
			}
			if r := a.do("PUT", "/api/v1/settings/portal", a.key, map[string]any{"branding": map[string]any{"name": "Example SaaS",
				"primary_color": "blue", "accent_color": "#0f172a"}, "plans": []string{"nope"}}); r.status != 400 ||
				!strings.Contains(string(r.body), "branding.primary_color") {
				t.Fatalf("bad settings: %d %s", r.status, r.body)
			}
			if r := a.do("PUT", "/api/v1/settings/portal", a.key, map[string]any{"branding": map[string]any{"name": "Example SaaS",
				"primary_color": "#1d4ed8", "accent_color": "#0f172a"}, "allow_plan_change": true, "plans": []string{"basic", "pro"},
				"plan_change_when": "period_end", "allow_cancel": true}); r.status != 200 {
				t.Fatalf("settings: %d %s", r.status, r.body)
			}
			ch := ada.do("POST", "/api/v1/portal/subscriptions/"+subs[0]+"/change-plan", map[string]any{"plan": "pro"})
			if ch.status != 200 || ch.json(t)["pending_plan"].(map[string]any)["key"] != "pro" {
				t.Fatalf("change plan: %d %s", ch.status, ch.body)
			}
			if cn := ada.do("POST", "/api/v1/portal/subscriptions/"+subs[0]+"/cancel", nil); cn.status != 200 || cn.json(t)["ends_at"] == nil {
				t.Fatalf("cancel: %d %s", cn.status, cn.body)
			}

			// Bob's portal sees Bob, and another tenant's staff cannot touch Ada's links.
			bob := newPortalBrowser(t, a.base)
			if r := bob.open(linkB["url"].(string)); r.status != 200 {
				t.Fatalf("open Bob: %d %s", r.status, r.body)
			}
			bobOv := bob.do("GET", "/api/v1/portal/overview", nil)
			if bobOv.json(t)["customer"].(map[string]any)["id"] != cus[1] || strings.Contains(string(bobOv.body), cus[0]) {
				t.Fatalf("Bob's overview: %s", bobOv.body)
			}

			// Revoking the link ends Ada's session and the link.
			if r := a.do("DELETE", "/api/v1/customers/"+cus[0]+"/portal-links/"+linkA["id"].(string), a.key, nil); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			if r := ada.do("GET", "/api/v1/portal/overview", nil); r.status != 401 || problemCode(r.body) != "portal_session_ended" {
				t.Fatalf("after revoke: %d %s", r.status, r.body)
			}
			if r := newPortalBrowser(t, a.base).open(linkA["url"].(string)); r.status != 401 {
				t.Fatalf("revoked link opened: %d %s", r.status, r.body)
			}
			// Signing out ends Bob's.
			if r := bob.do("DELETE", "/api/v1/portal/session", nil); r.status != 204 {
				t.Fatalf("sign out: %d %s", r.status, r.body)
			}
			if r := bob.do("GET", "/api/v1/portal/invoices", nil); r.status != 401 {
				t.Fatalf("after sign-out: %d %s", r.status, r.body)
			}
		})
	}
}

// TestEndUserOpensTheirOrganizationsPortal: an end user holding the owner
// (or billing_admin) role of an organization gets a portal link for the
// customer billed for it; a plain member and a stranger do not.
func TestEndUserOpensTheirOrganizationsPortal(t *testing.T) {
	t.Parallel()
	w := newOrgWorld(t, "sqlite")
	w.user(t, "alice@acme.test", true)
	dave := w.user(t, "dave@acme.test", true)
	w.user(t, "mallory@evil.test", true)
	tokA := w.mustSignIn(t, "alice@acme.test")
	o := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tokA, map[string]any{"name": "Acme", "currency": "EUR"})
	id, cus := o["id"].(string), o["customer_id"].(string)
	w.call(t, 201, "POST", "/api/v1/organizations/"+id+"/members", w.key, map[string]any{"user_id": dave.ID, "role": "member"})
	path := "/api/v1/end-user/organizations/" + id + "/portal-links"

	link := w.call(t, 201, "POST", path, tokA, map[string]any{"ttl_seconds": 300})
	b := newPortalBrowser(t, w.base)
	if r := b.open(link["url"].(string)); r.status != 200 {
		t.Fatalf("open: %d %s", r.status, r.body)
	}
	if ov := b.do("GET", "/api/v1/portal/overview", nil).json(t); ov["customer"].(map[string]any)["id"] != cus {
		t.Fatalf("the portal of Acme's owner: %v", ov)
	}
	if r := w.do("POST", path, w.mustSignIn(t, "dave@acme.test"), map[string]any{}); r.status != 403 || problemCode(r.body) != "organization_role_required" {
		t.Fatalf("a plain member: %d %s", r.status, r.body)
	}
	if r := w.do("POST", path, w.mustSignIn(t, "mallory@evil.test"), map[string]any{}); r.status != 404 {
		t.Fatalf("a stranger: %d %s", r.status, r.body)
	}
	if r := w.do("POST", path, w.key, map[string]any{}); r.status != 401 {
		t.Fatalf("a staff key: %d %s", r.status, r.body)
	}
}
