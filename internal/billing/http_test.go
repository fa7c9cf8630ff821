package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

type httpRes struct {
	status int
	ctype  string
	header http.Header
	body   []byte
}

func (r httpRes) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

type httpClient struct {
	t        *testing.T
	url, key string
}

func (c httpClient) do(method, path string, body any, hdr ...string) httpRes {
	c.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/xml"
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return httpRes{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), header: res.Header, body: raw}
}

func (c httpClient) ok(want int, method, path string, body any, hdr ...string) httpRes {
	c.t.Helper()
	r := c.do(method, path, body, hdr...)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func (c httpClient) problem(status int, code, method, path string, body any) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status || !strings.HasPrefix(r.ctype, "application/problem+json") {
		c.t.Fatalf("%s %s: %d %s, want %d problem+json %s: %s", method, path, r.status, r.ctype, status, code, r.body)
	}
	p := r.obj(c.t)
	if p["code"] != code {
		c.t.Fatalf("%s %s: code %v, want %s: %s", method, path, p["code"], code, r.body)
	}
	return p
}

// TestHTTPBillingEndToEnd drives the billing routes over HTTP: taxes,
// customer, subscription backdated two months with usage, billing runs on
// a fake clock, invoices, documents, state changes, credit notes, coupons,
// credits, the upcoming invoice and document conversion.
func TestHTTPBillingEndToEnd(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, month(2).Add(1), Config{})
		log := slog.New(slog.DiscardHandler)
		const key = "abk_billing_http"
		s := httpapi.New(httpapi.Config{Version: "test"}, d, log, prometheus.NewRegistry())
		s.SetAuthenticator(func(_ context.Context, tok string) (*abacus.Principal, error) {
			if tok != key {
				return nil, abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials", "unknown key")
			}
			return &abacus.Principal{TenantID: b.tenant, Kind: "api_key", ID: "key_1",
				Scopes: []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite, abacus.ScopeAdmin}}, nil
		})
		catalog.RegisterRoutes(s, b.cat)
		subscription.RegisterRoutes(s, b.subs)
		RegisterRoutes(s, b.svc)
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		c := httpClient{t: t, url: srv.URL, key: key}

		rate := c.ok(201, "POST", "/api/v1/tax-rates", map[string]any{"name": "VAT", "percentage": "19"}).obj(t)
		c.problem(400, "invalid_tax_rate", "POST", "/api/v1/tax-rates", map[string]any{"name": "", "percentage": "-1"})
		cus := c.ok(201, "POST", "/api/v1/customers", map[string]any{"name": "Acme GmbH", "currency": "EUR", "email": "ap@acme.example", "tax_id": "DE811907980",
			"address":  map[string]any{"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
			"subjects": []string{"acme"}}).obj(t)
		cusID := cus["id"].(string)
		plan := b.plan("pro", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "20"), perUnit("api", "api", "0.01")}})
		c.ok(200, "PUT", "/api/v1/tax-assignments", map[string]any{"target_type": "customer", "target_id": cusID, "tax_rate_id": rate["id"]})
		sub := c.ok(201, "POST", "/api/v1/subscriptions", map[string]any{"customer_id": cusID, "plan_id": plan, "start_at": t0,
			"skip_trial": true}).obj(t)
		subID := sub["id"].(string)
		b.usage.Record(b.tenant, "api", "acme", t0.AddDate(0, 0, 10), dec("1000"))     // January: 10.00
		b.usage.Record(b.tenant, "api", "acme", month(1).AddDate(0, 0, 3), dec("500")) // February: 5.00

		// Billing catches up on the two past boundaries and the start.
		st := b.run(month(2).Add(2 * 3600e9))
		if st.Invoices != 3 || st.Finalized != 3 {
			t.Fatalf("run: %+v, want 3 invoices created and finalized", st)
		}
		list := c.ok(200, "GET", "/api/v1/invoices?subscription_id="+subID+"&limit=2", nil).obj(t)
		if data := list["data"].([]any); len(data) != 2 || list["next_cursor"] == "" {
			t.Fatalf("first page: %s", mustJSON(list))
		}
		all := c.ok(200, "GET", "/api/v1/invoices?limit=100", nil).obj(t)["data"].([]any)
		feb := all[1].(map[string]any) // 1 Feb: January's usage + February's fee
		febID := feb["id"].(string)
		inv := c.ok(200, "GET", "/api/v1/invoices/"+febID, nil).obj(t)
		if inv["status"] != "open" || inv["number"] != "INV-2026-000002" || inv["total"] != "35.7" {
			t.Fatalf("February invoice: %s", mustJSON(inv))
		}
		c.problem(409, "invalid_invoice_transition", "POST", "/api/v1/invoices/"+febID+"/finalize", nil)
		c.problem(404, "invoice_not_found", "GET", "/api/v1/invoices/inv_missing", nil)

		for _, f := range []struct{ format, accept, ctype, prefix string }{
			{"json", "", "application/json", "{"},
			{"csv", "", "text/csv", ""},
			{"pdf", "", "application/pdf", "%PDF"},
			{"ubl", "", "application/xml", "<?xml"},
			{"cii", "", "application/xml", "<?xml"},
			{"facturx", "", "application/pdf", "%PDF-1.7"},
			{"", "application/pdf", "application/pdf", "%PDF"},
			{"", "text/csv", "text/csv", ""},
		} {
			path := "/api/v1/invoices/" + febID + "/document"
			if f.format != "" {
				path += "?format=" + f.format
			}
			var hdr []string
			if f.accept != "" {
				hdr = []string{"Accept", f.accept}
			}
			r := c.ok(200, "GET", path, nil, hdr...)
			if !strings.HasPrefix(r.ctype, f.ctype) || !strings.HasPrefix(string(r.body), f.prefix) {
				t.Fatalf("document %s/%s: %s %.40q", f.format, f.accept, r.ctype, r.body)
			}
			if f.format == "ubl" {
				validateUBL(t, "http-feb", r.body)
			}
			if f.format == "cii" || f.format == "facturx" { // Abacus's own checks; the demo test runs the official validator
				if d, rep, err := document.Parse(r.body); err != nil || !rep.Valid() || d.Number == "" {
					t.Fatalf("%s document does not read back: %v %+v", f.format, err, rep)
				}
			}
		}
		c.problem(400, "invalid_request", "GET", "/api/v1/invoices/"+febID+"/document?format=docx", nil)

		// A draft (grace not over yet) has no document.
		b.clock.Set(month(3))
		st = b.run(month(3))
		if st.Invoices != 1 || st.Finalized != 0 {
			t.Fatalf("run at 1 Apr: %+v, want one draft", st)
		}
		draft := c.ok(200, "GET", "/api/v1/invoices?status=draft", nil).obj(t)["data"].([]any)[0].(map[string]any)
		draftID := draft["id"].(string)
		c.problem(409, "invoice_not_finalized", "GET", "/api/v1/invoices/"+draftID+"/document?format=pdf", nil)
		c.problem(409, "invalid_invoice_transition", "POST", "/api/v1/invoices/"+draftID+"/void", nil)
		fin := c.ok(200, "POST", "/api/v1/invoices/"+draftID+"/finalize", nil).obj(t)
		if fin["status"] != "open" || fin["number"] != "INV-2026-000004" {
			t.Fatalf("finalized by hand: %s", mustJSON(fin))
		}
		if v := c.ok(200, "POST", "/api/v1/invoices/"+draftID+"/void", nil).obj(t); v["status"] != "void" {
			t.Fatalf("void: %s", mustJSON(v))
		}
		c.problem(409, "invalid_invoice_transition", "POST", "/api/v1/invoices/"+draftID+"/mark-paid", nil)
		if p := c.ok(200, "POST", "/api/v1/invoices/"+febID+"/mark-paid", nil).obj(t); p["status"] != "paid" {
			t.Fatalf("mark paid: %s", mustJSON(p))
		}

		// Credit notes: partial, then above what remains.
		cn := c.ok(201, "POST", "/api/v1/credit-notes", map[string]any{"invoice_id": febID, "amount": "10", "reason": "goodwill",
			"refund_to_credits": true}).obj(t)
		if cn["total"] != "11.9" {
			t.Fatalf("credit note: %s", mustJSON(cn))
		}
		c.problem(409, "credit_note_exceeds_remaining", "POST", "/api/v1/credit-notes", map[string]any{"invoice_id": febID, "amount": "100"})
		c.ok(200, "GET", "/api/v1/credit-notes/"+cn["id"].(string)+"/document?format=ubl", nil)
		bal := c.ok(200, "GET", "/api/v1/customers/"+cusID+"/credits/balance", nil).obj(t)
		if bal["available"] != "11.9" {
			t.Fatalf("balance after refund to credits: %s", mustJSON(bal))
		}
		c.ok(201, "POST", "/api/v1/customers/"+cusID+"/credits", map[string]any{"amount": "5"})
		c.problem(400, "invalid_credit_grant", "POST", "/api/v1/customers/"+cusID+"/credits", map[string]any{"amount": "-5"})

		// Coupons.
		c.ok(201, "POST", "/api/v1/coupons", map[string]any{"code": "HALF", "percent_off": "50", "duration": "once", "max_redemptions": 1})
		c.ok(201, "POST", "/api/v1/coupons/HALF/redemptions", map[string]any{"customer_id": cusID, "subscription_id": subID})
		c.problem(409, "coupon_exhausted", "POST", "/api/v1/coupons/HALF/redemptions", map[string]any{"customer_id": cusID})
		up := c.ok(200, "GET", "/api/v1/subscriptions/"+subID+"/upcoming-invoice", nil).obj(t)
		if up["discount_total"] != "10" { // 50 % of May's 20 fee (no usage in April)
			t.Fatalf("upcoming invoice: %s", mustJSON(up))
		}

		// Conversion: a valid supplier UBL (the document package's own
		// example), then an invalid one.
		ubl, err := os.ReadFile(filepath.Join("..", "document", "testdata", "examples", "invoice-saas-de.xml"))
		must(t, err)
		r := c.ok(200, "POST", "/api/v1/documents/convert?format=csv", ubl)
		if !strings.HasPrefix(r.ctype, "text/csv") || len(r.body) == 0 {
			t.Fatalf("convert: %s %.80q", r.ctype, r.body)
		}
		// Any format in, any out: the CII of the example converts back to
		// UBL, and what it cannot carry would be listed in a header.
		cii := c.ok(200, "POST", "/api/v1/documents/convert?format=cii", ubl)
		if !bytes.Contains(cii.body, []byte("CrossIndustryInvoice")) {
			t.Fatalf("convert to CII: %.200q", cii.body)
		}
		back := c.ok(200, "POST", "/api/v1/documents/convert?format=ubl", cii.body)
		if !bytes.Contains(back.body, []byte("<cbc:ID>WW-2027-00042</cbc:ID>")) || back.header.Get("Abacus-Conversion-Dropped") != "" {
			t.Fatalf("CII back to UBL: dropped %q %.200q", back.header.Get("Abacus-Conversion-Dropped"), back.body)
		}
		toCSV := c.ok(200, "POST", "/api/v1/documents/convert?format=csv", cii.body)
		if !strings.Contains(toCSV.header.Get("Abacus-Conversion-Dropped"), "totals") {
			t.Fatalf("CSV conversion does not report what CSV cannot carry: %q", toCSV.header.Get("Abacus-Conversion-Dropped"))
		}
		bad := bytes.Replace(ubl, []byte("<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>"), []byte(""), 1)
		p := c.problem(422, "document_invalid", "POST", "/api/v1/documents/convert", bad)
		if errs, _ := p["errors"].([]any); len(errs) == 0 {
			t.Fatalf("invalid UBL: want the violations listed, got %s", mustJSON(p))
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
