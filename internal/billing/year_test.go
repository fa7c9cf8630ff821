package billing

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func month(k int) time.Time { return t0.AddDate(0, k, 0) }

// usage of month m (1 = January): two events, on the 5th and the 20th.
func u1(m int) decimal.Decimal { return decimal.NewFromInt(int64(1000 + 100*m)) }
func u2(m int) decimal.Decimal { return decimal.NewFromInt(int64(500 + 50*m)) }

// expected is an independent calculation of one invoice: net amounts by
// tax group, a discount share, and the credits applied.
type expected struct {
	total, due decimal.Decimal
}

func r(d decimal.Decimal, places int32) decimal.Decimal { return d.Round(places) }

// tax computes total = net + round(net × rate) for one group.
func withTax(net, rate decimal.Decimal, places int32) decimal.Decimal {
	return net.Add(r(net.Mul(rate).Div(decimal.NewFromInt(100)), places))
}

func expectations() map[string][]expected {
	out := map[string][]expected{}
	h := decimal.NewFromInt(100)
	// A: EUR 19 % exclusive; 49.90 per seat in advance; 0.002 per call;
	// 3 seats, 5 from 16 June (half of June: −74.85 +124.75); 10 % off
	// the first three invoices.
	for k := 0; k <= 12; k++ {
		seats := int64(3)
		if k >= 6 { // boundary 1 July onwards (k = 6 is 1 July)
			seats = 5
		}
		net := dec("49.90").Mul(decimal.NewFromInt(seats))
		if k >= 1 {
			m := k // the usage month of boundary k is month k (January for k = 1)
			net = net.Add(r(u1(m).Mul(dec("0.002")), 2)).Add(r(u2(m).Mul(dec("0.002")), 2))
		}
		if k == 6 {
			net = net.Add(dec("-74.85")).Add(dec("124.75"))
		}
		if k <= 2 {
			net = net.Sub(r(net.Mul(dec("10")).Div(h), 2))
		}
		tot := withTax(net, dec("19"), 2)
		out["A"] = append(out["A"], expected{tot, tot})
	}
	// B: JPY, zero-rated; 9800 in advance; 0.5 per call, rounded to yen.
	for k := 0; k <= 12; k++ {
		net := dec("9800")
		if k >= 1 {
			net = net.Add(r(u1(k).Add(u2(k)).Mul(dec("0.5")), 0))
		}
		out["B"] = append(out["B"], expected{net, net})
	}
	// C: reverse charge; pro (49.90 + 0.002/call) until 16 April, then
	// enterprise (199 + 0.001/call, commitment 100 per period); 100 of
	// credits expiring 1 September.
	credit := dec("100")
	for k := 0; k <= 12; k++ {
		var net decimal.Decimal
		switch {
		case k <= 3: // 1 Jan .. 1 Apr
			net = dec("49.90")
			if k >= 1 {
				net = net.Add(r(u1(k).Add(u2(k)).Mul(dec("0.002")), 2))
			}
		case k == 4: // 1 May: April split at the 16th
			net = dec("199").Add(r(u1(4).Mul(dec("0.002")), 2))
			use := r(u2(4).Mul(dec("0.001")), 2)
			net = net.Add(use).Add(dec("50").Sub(use)) // commitment pro rata: 100 × 15/30
			net = net.Add(dec("-24.95")).Add(dec("99.50"))
		default:
			net = dec("199").Add(dec("100")) // usage + true-up = commitment
		}
		due := net
		if k <= 7 { // credits expire 1 September (k = 8)
			use := decimal.Min(credit, net)
			credit = credit.Sub(use)
			due = net.Sub(use)
		}
		out["C"] = append(out["C"], expected{net, due})
	}
	// D: exempt; graduated usage only: 0–1000 free, then 0.01 + 5 flat.
	for k := 1; k <= 12; k++ {
		q := u1(k).Add(u2(k))
		net := q.Sub(dec("1000")).Mul(dec("0.01")).Add(dec("5"))
		out["D"] = append(out["D"], expected{net, net})
	}
	// E: KWD (3 decimals), 5 %; 15.125 in advance; 0.0005 per call.
	for k := 0; k <= 12; k++ {
		net := dec("15.125")
		if k >= 1 {
			net = net.Add(r(u1(k).Add(u2(k)).Mul(dec("0.0005")), 3))
		}
		tot := withTax(net, dec("5"), 3)
		out["E"] = append(out["E"], expected{tot, tot})
	}
	// F: enterprise from the start, 19 % inclusive: each line's net is
	// gross / 1.19 rounded, tax on the sum of nets.
	for k := 0; k <= 12; k++ {
		net := r(dec("199").Div(dec("1.19")), 2)
		if k >= 1 {
			use := r(u1(k).Add(u2(k)).Mul(dec("0.001")), 2)
			net = net.Add(r(use.Div(dec("1.19")), 2)).Add(r(dec("100").Sub(use).Div(dec("1.19")), 2))
		}
		tot := withTax(net, dec("19"), 2)
		out["F"] = append(out["F"], expected{tot, tot})
	}
	return out
}

type yearWorld struct {
	b         *bundle
	customers map[string]string // letter → customer id
	events    map[time.Time]func()
}

func setupYear(t *testing.T, d *db.DB) *yearWorld {
	b := newBundle(t, d, t0, Config{})
	w := &yearWorld{b: b, customers: map[string]string{}}
	ctx := b.ctx
	pro := b.plan("pro", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seats", "49.90"), perUnit("api", "api", "0.002")}})
	ent := b.plan("enterprise", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("platform", "199"), perUnit("api", "api", "0.001")},
		MinimumCommitment: decp("100")})
	jp := b.plan("jp", catalog.VersionSpec{Currency: "JPY", Charges: []pricing.Charge{feeCharge("base", "9800"), perUnit("api", "api", "0.5")}})
	metered := b.plan("metered", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{{Key: "api", Description: "API calls", Kind: pricing.ChargeUsage,
		Meter: "api", Price: &pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{{UpTo: decp("1000")},
			{UpTo: decp("10000"), UnitAmount: dec("0.01"), FlatAmount: dec("5")}, {UnitAmount: dec("0.005")}}}}}})
	kwd := b.plan("kwd", catalog.VersionSpec{Currency: "KWD", Charges: []pricing.Charge{feeCharge("base", "15.125"), perUnit("api", "api", "0.0005")}})

	std, err := b.svc.CreateTaxRate(ctx, TaxRateInput{Name: "DE VAT", Percentage: dec("19"), Country: "DE"})
	must(t, err)
	incl, err := b.svc.CreateTaxRate(ctx, TaxRateInput{Name: "DE VAT incl.", Percentage: dec("19"), Country: "DE", Inclusive: true})
	must(t, err)
	zero, err := b.svc.CreateTaxRate(ctx, TaxRateInput{Name: "Export zero", Category: document.TaxZeroRated})
	must(t, err)
	kw, err := b.svc.CreateTaxRate(ctx, TaxRateInput{Name: "KW VAT", Percentage: dec("5"), Country: "KW"})
	must(t, err)
	addr := func(country string) catalog.Address {
		return catalog.Address{Line1: "Main street 1", City: "Town", PostalCode: "12345", Country: country}
	}
	mk := func(letter, currency, country, taxID string, status catalog.TaxStatus) string {
		c := b.customer(catalog.CustomerInput{Name: "Customer " + letter, Email: letter + "@example.com", Currency: currency, Address: addr(country),
			TaxID: taxID, TaxStatus: status, Subjects: []string{"subj-" + letter}, Metadata: map[string]string{"peppol_endpoint": fmt.Sprintf("0060:%09d", int(letter[0]))}})
		w.customers[letter] = c.ID
		return c.ID
	}
	a := mk("A", "EUR", "DE", "", "")
	bb := mk("B", "JPY", "JP", "", "")
	c := mk("C", "EUR", "FR", "FR40303265045", "")
	dd := mk("D", "EUR", "DE", "", catalog.TaxExempt)
	e := mk("E", "KWD", "KW", "", "")
	f := mk("F", "EUR", "DE", "", "")
	must(t, b.svc.AssignTaxRate(ctx, "customer", a, std.ID))
	must(t, b.svc.AssignTaxRate(ctx, "plan", jp, zero.ID))
	must(t, b.svc.AssignTaxRate(ctx, "plan", ent, std.ID)) // C is reverse-charged despite its plan's rate
	must(t, b.svc.AssignTaxRate(ctx, "customer", e, kw.ID))
	must(t, b.svc.AssignTaxRate(ctx, "customer", f, incl.ID))

	subA := b.subscribe(a, pro, "3", t0)
	b.subscribe(bb, jp, "1", t0)
	subC := b.subscribe(c, pro, "1", t0)
	b.subscribe(dd, metered, "1", t0)
	b.subscribe(e, kwd, "1", t0)
	b.subscribe(f, ent, "1", t0)

	_, err = b.svc.CreateCoupon(ctx, CouponInput{Code: "WELCOME10", PercentOff: decp("10"), Duration: Repeating, DurationPeriods: 3, MaxRedemptions: 1})
	must(t, err)
	_, err = b.svc.Redeem(ctx, "welcome10", RedeemInput{CustomerID: a})
	must(t, err)
	exp := month(8)
	_, err = b.svc.Grant(ctx, c, GrantInput{Amount: dec("100"), ExpiresAt: &exp, Description: "Welcome credit"})
	must(t, err)

	for _, letter := range []string{"A", "B", "C", "D", "E", "F"} {
		for m := 1; m <= 12; m++ {
			if m == 12 {
				continue // December usage arrives late, during the grace period
			}
			b.usage.Record(b.tenant, "api", "subj-"+letter, month(m-1).AddDate(0, 0, 4), u1(m))
			b.usage.Record(b.tenant, "api", "subj-"+letter, month(m-1).AddDate(0, 0, 19), u2(m))
		}
	}
	w.events = map[time.Time]func(){
		time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC): func() {
			_, err := b.subs.ChangePlan(ctx, subC.ID, subscription.ChangePlanInput{PlanID: ent, When: subscription.Now})
			must(t, err)
		},
		time.Date(2026, 6, 16, 0, 0, 0, 0, time.UTC): func() {
			_, err := b.subs.ChangeQuantity(ctx, subA.ID, dec("5"))
			must(t, err)
		},
	}
	return w
}

func TestYearOfBilling(t *testing.T) {
	t.Parallel()
	var ublMu sync.Mutex
	var ubl = map[string][]byte{}
	t.Run("engines", func(t *testing.T) {
		dbtest.Run(t, func(t *testing.T, d *db.DB) {
			w := setupYear(t, d)
			b := w.b
			var times []time.Time
			for at := range w.events {
				times = append(times, at)
			}
			for k := 0; k <= 12; k++ {
				times = append(times, month(k), month(k).Add(30*time.Minute), month(k).Add(time.Hour))
			}
			sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
			for _, at := range times {
				b.clock.Set(at)
				if f := w.events[at]; f != nil {
					f()
					continue
				}
				if at.Equal(month(12).Add(30 * time.Minute)) {
					// late December usage: the drafts are open, it still lands
					for _, letter := range []string{"A", "B", "C", "D", "E", "F"} {
						b.usage.Record(b.tenant, "api", "subj-"+letter, month(11).AddDate(0, 0, 4), u1(12))
						b.usage.Record(b.tenant, "api", "subj-"+letter, month(11).AddDate(0, 0, 19), u2(12))
					}
					b.svc.cfg.RefreshInterval = time.Minute
				}
				b.run(at)
			}
			// Idempotent: running again changes nothing.
			if st := b.run(month(12).Add(2 * time.Hour)); st.Invoices != 0 || st.Finalized != 0 {
				t.Fatalf("a second run billed again: %+v", st)
			}
			invs := b.invoices()
			byCus := map[string][]Invoice{}
			for _, inv := range invs {
				if inv.Status == Draft {
					t.Fatalf("invoice %s still draft after grace", inv.ID)
				}
				byCus[inv.CustomerID] = append(byCus[inv.CustomerID], inv)
			}
			exp := expectations()
			for letter, want := range exp {
				got := byCus[w.customers[letter]]
				sort.Slice(got, func(i, j int) bool { return got[i].PeriodStart.Before(got[j].PeriodStart) })
				if len(got) != len(want) {
					t.Fatalf("customer %s: %d invoices, want %d", letter, len(got), len(want))
				}
				for i := range want {
					if !got[i].Total.Equal(want[i].total) || !got[i].AmountDue.Equal(want[i].due) {
						t.Errorf("customer %s invoice %d (%s): total %s due %s, want total %s due %s\nlines: %+v", letter, i,
							got[i].PeriodStart.Format("2006-01-02"), got[i].Total, got[i].AmountDue, want[i].total, want[i].due, got[i].Lines)
					}
				}
			}
			assertGapless(t, d, b.tenant, "INV", len(invs))
			// Credit notes: partial by amount with refund, then one above what remains.
			dInv := byCus[w.customers["D"]][1]
			cn, err := b.svc.CreateCreditNote(b.ctx, CreditNoteInput{InvoiceID: dInv.ID, Amount: decp("5.00"), Reason: "Goodwill", RefundToCredits: true})
			must(t, err)
			if !cn.Total.Equal(dec("5")) || cn.Number != fmt.Sprintf("CN-%d-000001", b.clock.Now().Year()) {
				t.Fatalf("credit note %+v", cn)
			}
			_, err = b.svc.CreateCreditNote(b.ctx, CreditNoteInput{InvoiceID: dInv.ID})
			if e, ok := abacus.AsError(err); !ok || e.Code != "credit_note_exceeds_remaining" {
				t.Fatalf("whole credit after a partial one: %v", err)
			}
			bal, err := b.svc.CreditBalance(b.ctx, w.customers["D"], "")
			must(t, err)
			if !bal.Available.Equal(dec("5")) {
				t.Fatalf("refund balance %s, want 5", bal.Available)
			}
			aInv := byCus[w.customers["A"]][6] // the seat change
			cnA, err := b.svc.CreateCreditNote(b.ctx, CreditNoteInput{InvoiceID: aInv.ID, Lines: []CreditNoteLine{{LineID: aInv.Lines[0].ID}}})
			must(t, err)
			// Expired credits: C's grant left nothing; its ledger sums to the balance.
			balC, err := b.svc.CreditBalance(b.ctx, w.customers["C"], "")
			must(t, err)
			if !balC.Available.IsZero() {
				t.Fatalf("C balance %s, want 0", balC.Available)
			}
			if d.Engine() != db.SQLite {
				return
			}
			// Documents of every case (validated once, on SQLite's run).
			pick := map[string]Invoice{"coupon": byCus[w.customers["A"]][0], "seat_change": aInv, "jpy_zero_rated": byCus[w.customers["B"]][1],
				"reverse_charge_credits": byCus[w.customers["C"]][1], "upgrade_commitment": byCus[w.customers["C"]][4],
				"exempt_graduated": dInv, "inclusive": byCus[w.customers["F"]][3], "late_usage": byCus[w.customers["A"]][12]}
			for name, inv := range pick {
				doc, err := b.svc.InvoiceDocument(b.ctx, inv.ID)
				must(t, err)
				x, err := document.UBL(doc)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ublMu.Lock()
				ubl[name] = x
				ublMu.Unlock()
			}
			for name, id := range map[string]string{"credit_note_amount": cn.ID, "credit_note_line": cnA.ID} {
				doc, err := b.svc.CreditNoteDocument(b.ctx, id)
				must(t, err)
				x, err := document.UBL(doc)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ublMu.Lock()
				ubl[name] = x
				ublMu.Unlock()
			}
			doc, err := b.svc.InvoiceDocument(b.ctx, aInv.ID)
			must(t, err)
			pdf, err := document.PDF(doc)
			must(t, err)
			checkPDF(t, pdf)
			// KWD keeps fils: UBL refuses it, the other formats work.
			kdoc, err := b.svc.InvoiceDocument(b.ctx, byCus[w.customers["E"]][1].ID)
			must(t, err)
			if _, err := document.Render(kdoc, document.FormatJSON); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("ubl", func(t *testing.T) {
		if len(ubl) < 10 {
			t.Fatalf("only %d documents to validate", len(ubl))
		}
		for name, x := range ubl {
			validateUBL(t, name, x) // the official validator checks them all at the end (TestMain)
		}
	})
}

// assertGapless checks that the tenant's numbers of series are 1..n.
func assertGapless(t *testing.T, d *db.DB, tenant, prefix string, n int) {
	t.Helper()
	rows, err := d.QueryContext(tenantCtx(t.Context(), tenant), `SELECT number FROM invoices WHERE tenant_id = $1 AND number IS NOT NULL`, tenant)
	must(t, err)
	defer rows.Close()
	seen := map[int]bool{}
	for rows.Next() {
		var num string
		must(t, rows.Scan(&num))
		var y, k int
		if _, err := fmt.Sscanf(num, prefix+"-%d-%d", &y, &k); err != nil {
			t.Fatalf("number %q: %v", num, err)
		}
		if seen[k] {
			t.Fatalf("number %d used twice", k)
		}
		seen[k] = true
	}
	if len(seen) != n {
		t.Fatalf("%d numbers for %d invoices", len(seen), n)
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			t.Fatalf("gap: number %d missing of 1..%d", i, n)
		}
	}
}

// checkPDF renders page 1 with pdftoppm and checks it is not blank.
func checkPDF(t *testing.T, pdf []byte) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "inv.pdf")
	must(t, os.WriteFile(f, pdf, 0o600))
	out, err := exec.Command("pdftoppm", "-r", "40", "-gray", "-f", "1", "-l", "1", f, filepath.Join(dir, "p")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "p*.pgm"))
	if len(m) == 0 {
		t.Fatal("pdftoppm wrote no page")
	}
	img, err := os.ReadFile(m[0])
	must(t, err)
	dark := 0
	for _, px := range img[len(img)/10:] {
		if px < 128 {
			dark++
		}
	}
	if dark < 200 {
		t.Fatalf("page 1 looks blank (%d dark pixels)", dark)
	}
}
