package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/demo"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// The demo against a fresh server: every pricing model, two currencies,
// several tax situations, backdated and trial subscriptions, usage through
// the ingestion API — and afterwards the finalized invoices' UBL passes the
// Peppol validator and their PDFs render. One invoice per customer is
// validated (a customer's invoices share plan, currency and tax situation;
// the validator takes seconds per file).
func TestDemoInvoicesValidateAndRender(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	sum, err := demo.Run(context.Background(), client.New(a.base, a.key, nil), demo.Options{UsageDays: 10})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Customers < 20 || sum.Plans < 8 || sum.Invoices == 0 {
		t.Fatalf("demo created too little: %+v", sum)
	}
	var page struct {
		Data []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			Currency   string `json:"currency"`
			CustomerID string `json:"customer_id"`
		} `json:"data"`
	}
	r := a.do("GET", "/api/v1/invoices?limit=100", a.key, nil)
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
		t.Fatalf("listing invoices: %d %s", r.status, r.body)
	}
	var finalized []string
	pdfs := map[string]string{} // one PDF per currency
	seen := map[string]bool{}   // customers
	for _, inv := range page.Data {
		if (inv.Status == "open" || inv.Status == "paid") && !seen[inv.CustomerID] {
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
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for _, id := range finalized {
		ubl := a.do("GET", "/api/v1/invoices/"+id+"/document?format=ubl", a.key, nil)
		if ubl.status != 200 {
			t.Fatalf("UBL of %s: %d %s", id, ubl.status, ubl.body)
		}
		wg.Add(1)
		go func(id string, xml []byte) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if out, ok := einvoicetest.Validate(t, id, xml); !ok {
				t.Errorf("invoice %s: UBL rejected:\n%s", id, out)
			}
		}(id, ubl.body)
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
	wg.Wait()
}
