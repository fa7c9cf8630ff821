package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// waitDelivery polls a notification until its delivery on channel is in
// one of the final states and returns that state.
func (a *testApp) waitDelivery(id, channel string) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := a.do("GET", "/api/v1/notifications/"+id, a.key, nil).json(a.t)
		for _, d := range n["deliveries"].([]any) {
			d := d.(map[string]any)
			if d["channel"] == channel && d["state"] != "pending" && d["state"] != "sending" {
				return d
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("delivery not done: %v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNotificationsOverHTTPAndSMTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			mail := smtptest.Start(t, smtptest.Options{})
			a := start(t, engine, func(c *config.Config) { c.SMTP.URL = "smtp://" + mail.Addr })
			testTemplatesAndSend(t, a, mail)
			testSenderIdentity(t, a, mail)
			testBouncesSuppress(t, a, mail)
		})
	}
}

func testTemplatesAndSend(t *testing.T, a *testApp, mail *smtptest.Server) {
	path := "/api/v1/notifications/templates/usage.quota_warning/de"
	r := a.do("PUT", path, a.key, map[string]any{"subject": "Fast voll", "text": "Hallo\n{{if .customer.name}", "html": "<p>x</p>"})
	expectProblem(t, r, 400, "invalid_template")
	errs := r.json(t)["errors"].([]any)
	if f := errs[0].(map[string]any); f["field"] != "text" || !strings.HasPrefix(f["message"].(string), "line 2, column 1: ") {
		t.Fatalf("field error %v", f)
	}
	r = a.do("PUT", path, a.key, map[string]any{"subject": "{{.percent}} % Ihrer {{.feature.name}} verbraucht",
		"text": "Hallo {{.customer.name}},\nSie haben {{.usage}} von {{.limit}} verbraucht.\n", "html": "<p>Hallo <b>{{.customer.name}}</b></p>"})
	if r.status != 200 || r.json(t)["version"] != float64(1) {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	preview := a.post("/api/v1/notifications/templates/usage.quota_warning/de-AT/preview", map[string]any{})
	if preview["subject"] != "80 % Ihrer API calls verbraucht" || preview["locale"] != "de" {
		t.Fatalf("preview %v", preview)
	}
	sent := a.post("/api/v1/notifications", map[string]any{"template": "usage.quota_warning", "locale": "de-AT",
		"to":   map[string]any{"kind": "email", "email": "ada@example.com", "name": "Ada Lovelace"},
		"data": notifications.Samples()["usage.quota_warning"]})
	d := a.waitDelivery(sent["id"].(string), "email")
	if d["state"] != "sent" || d["subject"] != "80 % Ihrer API calls verbraucht" {
		t.Fatalf("delivery %v", d)
	}
	m := mail.Wait(t, 1, 30*time.Second)[0]
	p := smtptest.Parse(t, m.Raw)
	if m.To != "ada@example.com" || p.Subject != "80 % Ihrer API calls verbraucht" ||
		p.Text != "Hallo Acme GmbH,\nSie haben 800000 von 1000000 verbraucht.\n" || p.HTML != "<p>Hallo <b>Acme GmbH</b></p>" {
		t.Fatalf("mail to %s: %q / %q / %q", m.To, p.Subject, p.Text, p.HTML)
	}
	if d["text"] != nil {
		t.Fatalf("a mail body was kept although smtp.url is set: %v", d)
	}
	// Without a locale the built-in English one is used.
	sent = a.post("/api/v1/notifications", map[string]any{"template": "usage.quota_warning",
		"to": map[string]any{"kind": "email", "email": "bob@example.com"}, "data": notifications.Samples()["usage.quota_warning"]})
	a.waitDelivery(sent["id"].(string), "email")
	if p := smtptest.Parse(t, mail.Wait(t, 2, 30*time.Second)[1].Raw); p.Subject != "You have used 80 % of your API calls" ||
		!strings.Contains(p.HTML, "width:80%") {
		t.Fatalf("built-in: %q %s", p.Subject, p.HTML)
	}
}

func testSenderIdentity(t *testing.T, a *testApp, mail *smtptest.Server) {
	r := a.do("PATCH", "/api/v1/notifications/settings", a.key, map[string]any{"from": "no address"})
	expectProblem(t, r, 400, "invalid_settings")
	r = a.do("PATCH", "/api/v1/notifications/settings", a.key, map[string]any{"from": "Acme Billing <billing@acme.example>",
		"reply_to": "help@acme.example"})
	if r.status != 200 {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	before := len(mail.Messages())
	sent := a.post("/api/v1/notifications", map[string]any{"template": "payment.succeeded",
		"to": map[string]any{"kind": "email", "email": "carol@example.com"}, "data": notifications.Samples()["payment.succeeded"]})
	a.waitDelivery(sent["id"].(string), "email")
	m := mail.Wait(t, before+1, 30*time.Second)[before]
	p := smtptest.Parse(t, m.Raw)
	if m.From != "billing@acme.example" || p.Header.Get("From") != `"Acme Billing" <billing@acme.example>` && p.Header.Get("From") != "Acme Billing <billing@acme.example>" ||
		p.Header.Get("Reply-To") != "help@acme.example" {
		t.Fatalf("sender %s, headers %v", m.From, p.Header)
	}
}

func testBouncesSuppress(t *testing.T, a *testApp, mail *smtptest.Server) {
	secret := a.post("/api/v1/notifications/settings/bounce-secret", nil)["secret"].(string)
	tenant := a.tenantOf(t, a.key)
	report := map[string]any{"events": []any{map[string]any{"type": "bounce", "bounce_type": "hard", "email": "gone@example.com",
		"detail": "550 5.1.1 user unknown"}}}
	body, _ := json.Marshal(report)
	path := "/api/v1/notifications/bounces/" + tenant
	expectProblem(t, a.do("POST", path, "", report, "Abacus-Signature", notifications.SignBounce("nbs_wrong", time.Now(), body)),
		401, "invalid_signature")
	expectProblem(t, a.do("POST", path, "", report, "Abacus-Signature", notifications.SignBounce(secret, time.Now().Add(-time.Hour), body)),
		401, "invalid_signature")
	r := a.do("POST", path, "", report, "Abacus-Signature", notifications.SignBounce(secret, time.Now(), body))
	if r.status != 200 || r.json(t)["suppressed"] != float64(1) {
		t.Fatalf("bounce report: %d %s", r.status, r.body)
	}
	list := a.do("GET", "/api/v1/notifications/suppressions", a.key, nil).json(t)["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["reason"] != "hard_bounce" {
		t.Fatalf("suppressions %v", list)
	}
	a.post("/api/v1/notifications/suppressions", map[string]any{"email": "Zed@Example.com"})
	page := a.do("GET", "/api/v1/notifications/suppressions?limit=1", a.key, nil).json(t)
	next := a.do("GET", "/api/v1/notifications/suppressions?limit=1&cursor="+page["next_cursor"].(string), a.key, nil).json(t)
	if page["next_cursor"] != "gone@example.com" || next["data"].([]any)[0].(map[string]any)["email"] != "zed@example.com" || next["next_cursor"] != "" {
		t.Fatalf("pages %v %v", page, next)
	}
	expectProblem(t, a.do("GET", "/api/v1/notifications/suppressions?cursor=nope", a.key, nil), 400, "invalid_cursor")
	if r := a.do("DELETE", "/api/v1/notifications/suppressions/zed@example.com", a.key, nil); r.status != 204 {
		t.Fatalf("unsuppress: %d %s", r.status, r.body)
	}
	before := len(mail.Messages())
	sent := a.post("/api/v1/notifications", map[string]any{"template": "payment.succeeded",
		"to": map[string]any{"kind": "email", "email": "gone@example.com"}, "data": notifications.Samples()["payment.succeeded"]})
	if d := a.waitDelivery(sent["id"].(string), "email"); d["state"] != "suppressed" {
		t.Fatalf("delivery to a bounced address: %v", d)
	}
	if len(mail.Messages()) != before {
		t.Fatal("mail went to a suppressed address")
	}
	// A staff member addressed by id is looked up among the tenant's members.
	// (Identity's invitation goes through the module to the SMTP server.)
	before = len(mail.Messages())
	a.post("/api/v1/invitations", map[string]any{"email": "staffer@acme.example", "role": "admin"})
	invite := smtptest.Parse(t, mail.Wait(t, before+1, 30*time.Second)[before].Raw)
	token := regexp.MustCompile(`token=([a-z0-9_]+)`).FindStringSubmatch(invite.Text)
	if invite.Subject == "" || token == nil || !strings.Contains(invite.HTML, token[1]) {
		t.Fatalf("invitation %q: %s", invite.Subject, invite.Text)
	}
	a.post("/api/v1/invitations/accept", map[string]any{"token": token[1], "password": "quite a long passphrase 77"})
	me := a.do("GET", "/api/v1/members", a.key, nil).json(t)["data"].([]any)[0].(map[string]any)
	before = len(mail.Messages())
	sent = a.post("/api/v1/notifications", map[string]any{"template": "payment.succeeded",
		"to": map[string]any{"kind": "staff", "id": me["user_id"]}, "data": notifications.Samples()["payment.succeeded"]})
	if d := a.waitDelivery(sent["id"].(string), "email"); d["state"] != "sent" {
		t.Fatalf("staff by id: %v", d)
	}
	if m := mail.Wait(t, before+1, 30*time.Second)[before]; m.To != me["email"] {
		t.Fatalf("staff mail to %s, want %v", m.To, me["email"])
	}
	expectProblem(t, a.do("POST", "/api/v1/notifications", a.key, map[string]any{"template": "no.such_template",
		"to": map[string]any{"kind": "email", "email": "x@example.com"}}), 400, "unknown_template")
	r = a.do("POST", "/api/v1/notifications", a.key, map[string]any{"template": "payment.succeeded",
		"to": map[string]any{"kind": "email", "email": "not an address"}})
	expectProblem(t, r, 400, "invalid_notification")
	if f := r.json(t)["errors"].([]any)[0].(map[string]any); f["field"] != "to.email" {
		t.Fatalf("field %v", f)
	}
}

// A domain event travels outbox → relay → NATS → the notifications role's
// trigger → e-mail, with the customer read through the catalog. The event
// is recorded as soon as the program has started, before the triggers'
// consumer may exist (a consumer created with "new events only" missed it).
// The program then restarts on the same data: the consumer keeps its place
// and a second event is mailed too.
func TestADomainEventBecomesAMailThroughTheBus(t *testing.T) {
	t.Parallel()
	mail := smtptest.Start(t, smtptest.Options{})
	dir := t.TempDir()
	a := start(t, db.SQLite, func(c *config.Config) { c.SMTP.URL = "smtp://" + mail.Addr; c.DataDir = dir })
	cus := a.post("/api/v1/customers", map[string]any{"name": "Globex Ltd", "email": "owner@globex.example", "currency": "EUR"})
	tenant := a.tenantOf(t, a.key)
	reached := func(a *testApp) {
		err := a.DB.InTx(context.Background(), func(tx *db.Tx) error {
			_, err := subscription.EntitlementThresholdReached.Record(context.Background(), tx, tenant, "sub_x", time.Now(), subscription.ThresholdReached{
				CustomerID: cus["id"].(string), SubscriptionID: "sub_x", Feature: "api_calls", Threshold: 100,
				Limit: decimal.RequireFromString("1000"), Used: decimal.RequireFromString("1000")})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	reached(a)
	m := mail.Wait(t, 1, 60*time.Second)[0]
	p := smtptest.Parse(t, m.Raw)
	if m.To != "owner@globex.example" || p.Subject != "You have reached your api calls limit" || !strings.Contains(p.Text, "Hello Globex Ltd") ||
		!strings.Contains(p.Text, "with "+a.tenantName(t)) {
		t.Fatalf("mail to %s: %q\n%s", m.To, p.Subject, p.Text)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := start(t, db.SQLite, func(c *config.Config) { c.SMTP.URL = "smtp://" + mail.Addr; c.DataDir = dir })
	reached(b)
	if got := mail.Wait(t, 2, 60*time.Second); len(got) != 2 {
		t.Fatalf("after a restart: %d mails", len(got))
	}
}

func (a *testApp) tenantName(t *testing.T) string {
	t.Helper()
	name, err := identity.TenantName(context.Background(), a.DB, a.tenantOf(t, a.key))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// A finalized invoice reaches the customer's billing contacts by SMTP
// with the PDF and the UBL that billing renders, and its delivery status
// is readable per invoice.
func TestAFinalizedInvoiceIsMailedWithItsDocuments(t *testing.T) {
	t.Parallel()
	mail := smtptest.Start(t, smtptest.Options{})
	// A webhook endpoint that fails the first attempt of each message: the
	// invoice's history shows the failure, the retry and the delivery.
	var seen sync.Map
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, again := seen.LoadOrStore(r.Header.Get("webhook-id"), true); !again {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer rcv.Close()
	a := start(t, db.SQLite, func(c *config.Config) {
		c.SMTP.URL = "smtp://" + mail.Addr
		c.Webhooks.AllowPrivateTargets = true
	})
	must := func(r response, status int) map[string]any {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
		if len(r.body) == 0 {
			return nil
		}
		return r.json(t)
	}
	must(a.do("PUT", "/api/v1/billing/settings", a.key, map[string]any{"invoice_prefix": "INV", "credit_note_prefix": "CN",
		"grace_seconds": 0, "due_days": 14, "payment_terms": "Payable within 14 days",
		"seller": map[string]any{"name": "Example SaaS GmbH", "address": []string{"Torstraße 1"}, "city": "Berlin", "postal_code": "10119",
			"country_code": "DE", "vat_id": "DE987654321", "endpoint_id": "DE987654321", "endpoint_scheme": "9930"},
		"payment_means": map[string]any{"code": "58", "iban": "DE89370400440532013000", "account_name": "Example SaaS GmbH"}}), 200)
	rate := a.post("/api/v1/tax-rates", map[string]any{"name": "VAT", "percentage": "19"})
	cus := a.post("/api/v1/customers", map[string]any{"name": "Globex GmbH", "currency": "EUR", "email": "owner@globex.example",
		"tax_id": "DE811907980", "address": map[string]any{"line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}})
	must(a.do("PUT", "/api/v1/tax-assignments", a.key, map[string]any{"target_type": "customer", "target_id": cus["id"], "tax_rate_id": rate["id"]}), 200)
	a.post("/api/v1/webhook-endpoints", map[string]any{"url": rcv.URL, "event_types": []string{"invoice.finalized"}})
	must(a.do("PUT", "/api/v1/customers/"+cus["id"].(string)+"/invoice-delivery", a.key, map[string]any{"channels": []string{"email", "webhook"},
		"formats": []string{"pdf", "ubl", "cii", "facturx"}, "emails": []string{"ap@globex.example"}}), 200)
	plan := a.post("/api/v1/plans", map[string]any{"key": "pro", "name": "Pro"})
	spec := catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly, Charges: []pricing.Charge{{Key: "base", Description: "Pro plan",
		Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: decimal.RequireFromString("20"), Billed: pricing.InAdvance}}}}
	v := a.post("/api/v1/plans/"+plan["id"].(string)+"/versions", spec)
	a.post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", plan["id"], v["version"]), nil)
	a.post("/api/v1/subscriptions", map[string]any{"customer_id": cus["id"], "plan_id": plan["id"], "skip_trial": true,
		"start_at": time.Now().AddDate(0, 0, -40).UTC().Format(time.RFC3339)})

	m := mail.Wait(t, 1, 90*time.Second)[0] // the billing role runs every 10 s
	p := smtptest.Parse(t, m.Raw)
	var pdf, ubl, cii, facturx []byte
	for name, b := range p.Attachments {
		switch {
		case strings.HasSuffix(name, ".cii.xml"):
			cii = b
		case strings.HasSuffix(name, ".facturx.pdf"):
			facturx = b
		case strings.HasSuffix(name, ".pdf"):
			pdf = b
		case strings.HasSuffix(name, ".xml"):
			ubl = b
		}
	}
	if m.To != "ap@globex.example" || !strings.HasPrefix(p.Subject, "Invoice INV-") || !strings.Contains(p.Text, "Hello Globex GmbH") ||
		!strings.HasPrefix(string(pdf), "%PDF") || !strings.Contains(string(ubl), "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2") {
		t.Fatalf("mail to %s: %q %v\n%s", m.To, p.Subject, mapKeys(p.Attachments), p.Text)
	}
	// The formats of issue 22: CII, and Factur-X with the CII inside.
	if !strings.Contains(string(cii), "CrossIndustryInvoice") || !bytes.HasPrefix(facturx, []byte("%PDF")) || !bytes.Contains(facturx, []byte("factur-x.xml")) {
		t.Fatalf("CII or Factur-X missing: %v", mapKeys(p.Attachments))
	}
	invoices := must(a.do("GET", "/api/v1/invoices?customer_id="+cus["id"].(string), a.key, nil), 200)["data"].([]any)
	var id string
	for _, inv := range invoices {
		if inv := inv.(map[string]any); inv["status"] == "open" {
			id = inv["id"].(string)
		}
	}
	// The mail is sent; the webhook fails, is retried after ~5 s and is
	// delivered.
	want := map[string]string{"email": "queued,sent", "webhook": "queued,failed,retried,delivered"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		list := must(a.do("GET", "/api/v1/invoices/"+id+"/deliveries", a.key, nil), 200)["data"].([]any)
		got := map[string]string{}
		for _, d := range list {
			d := d.(map[string]any)
			var steps []string
			for _, h := range d["history"].([]any) {
				steps = append(steps, h.(map[string]any)["status"].(string))
			}
			got[d["channel"].(string)] = strings.Join(steps, ",")
			if d["channel"] == "email" && d["recipient"] != "ap@globex.example" || d["channel"] == "webhook" && d["recipient"] != rcv.URL {
				t.Fatalf("delivery %v", d)
			}
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of invoice %s: %v, want %v", id, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A download link Abacus did not sign is refused as problem+json.
	expectProblem(t, a.do("GET", "/api/v1/document-downloads/ZG9jdW1lbnQtbGlua3M.forged", "", nil), 403, "download_link_invalid")
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
