package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/demo"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// The demo against a fresh server, on both engines: every pricing model,
// two currencies, several tax situations, backdated and trial
// subscriptions, and two months of usage through the ingestion API that
// the billing of the backdated periods invoices — the first period's usage
// included. On SQLite the finalized invoices' UBL then passes the Peppol
// validator and their PDFs render (documents are built from the same
// invoice model on either engine, and the validator takes seconds a file).
func TestDemo(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			sum, err := demo.Run(context.Background(), client.New(a.base, a.key, nil), demo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Customers < 20 || sum.Plans < 8 || sum.Invoices == 0 {
				t.Fatalf("demo created too little: %+v", sum)
			}
			invoices := demoInvoices(t, a)
			checkTwoMonthsOfUsage(t, a, sum, invoices)
			if engine == db.SQLite {
				checkDocuments(t, a, sum, invoices)
			}
		})
	}
}

// demoInvoice is an invoice as GET /api/v1/invoices/{id} answers it.
type demoInvoice struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Currency   string `json:"currency"`
	CustomerID string `json:"customer_id"`
	CycleIndex int    `json:"cycle_index"`
	Lines      []struct {
		Kind        string          `json:"kind"`
		Meter       string          `json:"meter"`
		Quantity    decimal.Decimal `json:"quantity"`
		Amount      decimal.Decimal `json:"amount"`
		PeriodStart time.Time       `json:"period_start"`
		PeriodEnd   time.Time       `json:"period_end"`
		Usage       struct {
			Events     int64 `json:"events"`
			Components []struct {
				Kind       string          `json:"kind"`
				Quantity   decimal.Decimal `json:"quantity"`
				UnitAmount decimal.Decimal `json:"unit_amount"`
				Amount     decimal.Decimal `json:"amount"`
			} `json:"components"`
		} `json:"usage"` // a usage line's breakdown
	} `json:"lines"`
}

// demoInvoices returns the finalized invoices with their lines.
func demoInvoices(t *testing.T, a *testApp) []demoInvoice {
	t.Helper()
	var page struct {
		Data []demoInvoice `json:"data"`
	}
	r := a.do("GET", "/api/v1/invoices?limit=100", a.key, nil)
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
		t.Fatalf("listing invoices: %d %s", r.status, r.body)
	}
	var out []demoInvoice
	for _, inv := range page.Data {
		if inv.Status != "open" && inv.Status != "paid" {
			continue
		}
		r := a.do("GET", "/api/v1/invoices/"+inv.ID, a.key, nil)
		if err := json.Unmarshal(r.body, &inv); err != nil || r.status != 200 {
			t.Fatalf("reading invoice %s: %d %s", inv.ID, r.status, r.body)
		}
		out = append(out, inv)
	}
	return out
}

// meterTotal queries a meter over [from, to), for the subjects given (or
// all), and adds up the answer.
func meterTotal(t *testing.T, a *testApp, meter string, from, to time.Time, subjects ...string) decimal.Decimal {
	t.Helper()
	res, err := client.New(a.base, a.key, nil).QueryMeter(context.Background(), meter, client.Query{From: from, To: to, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	total := decimal.Zero
	for _, row := range res.Data {
		total = total.Add(decimal.RequireFromString(row.Value.String()))
	}
	return total
}

// eventCount counts the stored events of type typ of the subjects in
// [from, to).
func eventCount(t *testing.T, a *testApp, typ string, from, to time.Time, subjects ...string) int64 {
	t.Helper()
	var n int64
	for _, s := range subjects {
		q := url.Values{"type": {typ}, "subject": {s}, "from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "limit": {"1000"}}
		for {
			r := a.do("GET", "/api/v1/events?"+q.Encode(), a.key, nil)
			var evs []json.RawMessage
			if err := json.Unmarshal(r.body, &evs); err != nil || r.status != 200 {
				t.Fatalf("listing events: %d %s", r.status, r.body)
			}
			n += int64(len(evs))
			next := r.header.Get("Abacus-Next-Cursor")
			if next == "" {
				break
			}
			q.Set("cursor", next)
		}
	}
	return n
}

// checkTwoMonthsOfUsage: the demo sent usage since the backdated
// subscriptions started, the meters hold what it says it sent in the first
// backdated period, and every backdated subscription's first-period
// invoice bills that usage, line by line as metered, with a fee per event
// (the Scale plan's 0.30 per payment) for every event sent.
func checkTwoMonthsOfUsage(t *testing.T, a *testApp, sum demo.Summary, invoices []demoInvoice) {
	t.Helper()
	first := sum.FirstPeriod
	if sum.UsageDays < 59 || sum.UsageFrom.Before(first.Start) || sum.UsageFrom.After(first.Start.Add(24*time.Hour)) ||
		sum.UsageTo.Before(first.End.Add(27*24*time.Hour)) {
		t.Fatalf("usage does not span the two backdated months %s – %s: %+v", first.Start, first.End, sum)
	}

	// The tenant's window was raised to accept it.
	var settings struct {
		LateEventWindow string `json:"lateEventWindow"`
		Default         bool   `json:"default"`
	}
	r := a.do("GET", "/api/v1/settings/metering", a.key, nil)
	if err := json.Unmarshal(r.body, &settings); err != nil || r.status != 200 {
		t.Fatalf("metering settings: %d %s", r.status, r.body)
	}
	window, err := time.ParseDuration(settings.LateEventWindow)
	if err != nil || settings.Default || !sum.WindowRaised || settings.LateEventWindow != sum.LateEventWindow ||
		window < time.Since(sum.UsageFrom) {
		t.Fatalf("late-event window %+v after a run that sent usage since %s (summary: %s, raised %v)",
			settings, sum.UsageFrom, sum.LateEventWindow, sum.WindowRaised)
	}

	// The meter holds what the demo sent in the first backdated period.
	got := meterTotal(t, a, sum.APICallsMeter, first.Start, first.End)
	if sum.FirstPeriodAPICalls == 0 || !got.Equal(decimal.NewFromInt(int64(sum.FirstPeriodAPICalls))) {
		t.Fatalf("meter %s over the first backdated period %s – %s: %s API calls, the demo sent %d",
			sum.APICallsMeter, first.Start, first.End, got, sum.FirstPeriodAPICalls)
	}

	// Every customer with a closed period (a cycle after the first) has an
	// invoice billing usage of a period that starts in the first backdated
	// period, and every usage line bills exactly what its meter holds for
	// the customer over the line's period.
	subjects := map[string][]string{}
	eventTypes := map[string]string{} // meter slug → event type
	closed, billed := map[string]bool{}, map[string]bool{}
	usageInvoices, eventFees := 0, 0
	for _, inv := range invoices {
		if inv.CycleIndex > 0 {
			closed[inv.CustomerID] = true
		}
		inFirst := false
		for _, l := range inv.Lines {
			if l.Kind != "usage" {
				continue
			}
			if _, ok := subjects[inv.CustomerID]; !ok {
				var cus struct {
					Subjects []string `json:"subjects"`
				}
				r := a.do("GET", "/api/v1/customers/"+url.PathEscape(inv.CustomerID), a.key, nil)
				if err := json.Unmarshal(r.body, &cus); err != nil || r.status != 200 || len(cus.Subjects) == 0 {
					t.Fatalf("customer %s: %d %s", inv.CustomerID, r.status, r.body)
				}
				subjects[inv.CustomerID] = cus.Subjects
			}
			if want := meterTotal(t, a, l.Meter, l.PeriodStart, l.PeriodEnd, subjects[inv.CustomerID]...); !l.Quantity.Equal(want) {
				t.Errorf("invoice %s bills %s of %s over %s – %s; the meter holds %s", inv.ID, l.Quantity, l.Meter, l.PeriodStart, l.PeriodEnd, want)
			}
			if !l.Quantity.IsZero() && first.Contains(l.PeriodStart) {
				inFirst = true
			}
			for _, c := range l.Usage.Components {
				if c.Kind != "event_fee" {
					continue
				}
				if _, ok := eventTypes[l.Meter]; !ok {
					var m struct {
						EventType string `json:"eventType"`
					}
					r := a.do("GET", "/api/v1/meters/"+url.PathEscape(l.Meter), a.key, nil)
					if err := json.Unmarshal(r.body, &m); err != nil || r.status != 200 {
						t.Fatalf("meter %s: %d %s", l.Meter, r.status, r.body)
					}
					eventTypes[l.Meter] = m.EventType
				}
				// Every payment the demo sends has an amount, so each is one
				// of the meter's events.
				n := eventCount(t, a, eventTypes[l.Meter], l.PeriodStart, l.PeriodEnd, subjects[inv.CustomerID]...)
				if want := decimal.NewFromInt(n); l.Usage.Events != n || !c.Quantity.Equal(want) || !c.Amount.Equal(want.Mul(c.UnitAmount)) {
					t.Errorf("invoice %s bills %d events of %s over %s – %s, a fee for %s of them (%s); %d are stored",
						inv.ID, l.Usage.Events, l.Meter, l.PeriodStart, l.PeriodEnd, c.Quantity, c.Amount, n)
				}
				if n > 0 {
					eventFees++
				}
			}
		}
		if inFirst {
			billed[inv.CustomerID] = true
			usageInvoices++
		}
	}
	if len(closed) < 10 || len(billed) != len(closed) {
		t.Fatalf("%d customers have a closed period, %d of them an invoice with usage of the first backdated period", len(closed), len(billed))
	}
	if eventFees == 0 {
		t.Fatal("no invoice bills a fee per event; the Scale plan's customers bill 0.30 a payment")
	}
	if sum.UsageInvoices != usageInvoices {
		t.Fatalf("the demo reports %d invoices with first-period usage, the server holds %d", sum.UsageInvoices, usageInvoices)
	}
}

// checkDocuments validates one finalized invoice's UBL per customer (a
// customer's invoices share plan, currency and tax situation) with the
// Peppol validator and renders one PDF per currency.
func checkDocuments(t *testing.T, a *testApp, sum demo.Summary, invoices []demoInvoice) {
	t.Helper()
	var finalized []string
	pdfs := map[string]string{} // one PDF per currency
	seen := map[string]bool{}   // customers
	for _, inv := range invoices {
		if !seen[inv.CustomerID] {
			seen[inv.CustomerID] = true
			finalized = append(finalized, inv.ID)
			if _, ok := pdfs[inv.Currency]; !ok {
				pdfs[inv.Currency] = inv.ID
			}
		}
	}
	if len(finalized) < 10 {
		t.Fatalf("only %d customers have a finalized invoice; want the backdated ones (demo: %+v)", len(finalized), sum)
	}
	for _, id := range finalized {
		ubl := a.do("GET", "/api/v1/invoices/"+id+"/document?format=ubl", a.key, nil)
		if ubl.status != 200 {
			t.Fatalf("UBL of %s: %d %s", id, ubl.status, ubl.body)
		}
		// The project's own EN 16931 checks always; the official
		// validator where present (see einvoicetest: at the end of the run).
		if _, violations, err := document.ParseUBL(ubl.body); err != nil || len(violations) > 0 {
			t.Errorf("invoice %s: UBL fails Abacus's own checks: %v %+v", id, err, violations)
		}
		einvoicetest.CrossCheck(t, "invoice "+id, ubl.body)
	}
	// The first invoice as CII, XRechnung CII and the XML inside
	// its Factur-X: Abacus's own checks, and the official validator.
	for _, id := range finalized[:1] {
		for _, f := range []string{"cii", "xrechnung-cii", "facturx"} {
			r := a.do("GET", "/api/v1/invoices/"+id+"/document?format="+f, a.key, nil)
			if r.status != 200 {
				t.Fatalf("%s of %s: %d %s", f, id, r.status, r.body)
			}
			xml := r.body
			if f == "facturx" {
				var err error
				if xml, err = document.ExtractFacturX(r.body); err != nil {
					t.Fatalf("Factur-X of %s: %v", id, err)
				}
			}
			if _, rep, err := document.Parse(xml); err != nil || !rep.Valid() || len(rep.Dropped) > 0 {
				t.Errorf("invoice %s: %s fails Abacus's own checks: %v %+v", id, f, err, rep)
			}
			einvoicetest.CrossCheck(t, id+"-"+f, xml)
		}
	}
	for cur, id := range pdfs {
		pdf := a.do("GET", "/api/v1/invoices/"+id+"/document", a.key, nil, "Accept", "application/pdf")
		if pdf.status != 200 || !bytes.HasPrefix(pdf.body, []byte("%PDF")) {
			t.Fatalf("PDF of %s: %d %.40s", id, pdf.status, pdf.body)
		}
		dir := t.TempDir()
		f := filepath.Join(dir, "invoice.pdf")
		if err := os.WriteFile(f, pdf.body, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("pdftoppm", "-png", "-r", "40", f, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm (%s invoice %s): %v\n%s", cur, id, err, out)
		}
		png, err := os.ReadFile(filepath.Join(dir, "page-1.png"))
		if err != nil || len(png) < 2000 {
			t.Fatalf("%s invoice %s rendered no page (%d bytes, %v)", cur, id, len(png), err)
		}
	}
}

// The demo needs the admin scope and says so before it creates anything;
// a late-event window already longer than its usage is left as it is.
func TestDemoLateEventWindow(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	r := a.do("POST", "/api/v1/api-keys", a.key, map[string]any{"name": "no admin", "scopes": []string{"read", "write", "ingest"}})
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	key := r.json(t)["key"].(string)
	_, err := demo.Run(context.Background(), client.New(a.base, key, nil), demo.Options{})
	if err == nil || !strings.Contains(err.Error(), "late-event window") || !strings.Contains(err.Error(), "--scopes admin") {
		t.Fatalf("a run with a key without the admin scope: %v", err)
	}
	if r := a.do("GET", "/api/v1/meters", a.key, nil); r.status != 200 || strings.Contains(string(r.body), "api_calls") {
		t.Fatalf("the refused run created meters: %d %s", r.status, r.body)
	}

	if r := a.do("PUT", "/api/v1/settings/metering", a.key, map[string]string{"lateEventWindow": "2160h"}); r.status != 200 {
		t.Fatalf("setting the window: %d %s", r.status, r.body)
	}
	sum, err := demo.Run(context.Background(), client.New(a.base, a.key, nil), demo.Options{UsageDays: 3})
	if err != nil {
		t.Fatal(err)
	}
	r = a.do("GET", "/api/v1/settings/metering", a.key, nil)
	if r.status != 200 || r.json(t)["lateEventWindow"] != "2160h" || sum.WindowRaised || sum.LateEventWindow != "2160h" || sum.UsageDays != 3 {
		t.Fatalf("window after a 3-day run under 2160h: %d %s (summary %+v)", r.status, r.body, sum)
	}
}
