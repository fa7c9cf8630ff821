package billing

import (
	"bytes"
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// The batch writes frozen documents, line details and event payloads with
// goccy/go-json (marshalFrozen). Over the varied customers of the year
// test (coupons, credits, reverse charge, zero-rated, exempt, inclusive,
// JPY and KWD, graduated tiers), finalized by the batch itself (no grace),
// every stored byte must be what encoding/json writes for the same value.
func TestFrozenJSONIsEncodingJSON(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := setupYear(t, d)
		b := w.b
		st, err := b.svc.Settings(b.ctx)
		must(t, err)
		st.GraceSeconds = 0
		_, err = b.svc.PutSettings(b.ctx, st)
		must(t, err)
		for k := 0; k <= 3; k++ {
			b.run(month(k))
		}
		invs := b.invoices()
		// D's plan is usage only: nothing to bill at its start.
		if len(invs) != 6*4-1 {
			t.Fatalf("%d invoices, want 23", len(invs))
		}
		same := func(what string, v any) {
			t.Helper()
			want, err := json.Marshal(v)
			must(t, err)
			got, err := gojson.Marshal(v)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: goccy wrote\n%s\nencoding/json writes\n%s", what, got, want)
			}
		}
		plans, err := catalog.PlanNames(b.ctx, d, b.tenant)
		must(t, err)
		for _, inv := range invs {
			if inv.Status == Draft || len(inv.doc) == 0 {
				t.Fatalf("invoice %s is %s without a document; the batch should have finalized it", inv.ID, inv.Status)
			}
			cus, err := catalog.LoadCustomer(b.ctx, d, b.tenant, inv.CustomerID)
			must(t, err)
			sub, err := b.subs.Get(b.ctx, inv.SubscriptionID)
			must(t, err)
			inv.planName = plans[sub.PlanID] // as the batch priced it
			doc := invoiceDocument(&inv, cus, st)
			want, err := json.Marshal(doc)
			must(t, err)
			if !bytes.Equal(inv.doc, want) {
				t.Errorf("invoice %s: stored document\n%s\nencoding/json writes\n%s", inv.ID, inv.doc, want)
			}
			same("event of "+inv.ID, invoiceEvent(&inv))
			for _, l := range inv.Lines {
				same("tax of line "+l.ID, l.Tax)
				if l.Usage != nil {
					same("details of line "+l.ID, l.Usage)
				}
			}
		}
		// The stored payloads decode to what the invoices say.
		rows, err := d.QueryContext(b.ctx, `SELECT payload FROM outbox_events WHERE tenant_id = $1 AND type = 'invoice.finalized'`, b.tenant)
		must(t, err)
		defer rows.Close()
		n := 0
		for rows.Next() {
			var p string
			must(t, rows.Scan(&p))
			var ev struct {
				Number string `json:"number"`
				Status string `json:"status"`
			}
			must(t, json.Unmarshal([]byte(p), &ev))
			if ev.Number == "" || (ev.Status != string(Open) && ev.Status != string(Paid)) {
				t.Errorf("finalized event %s", p)
			}
			n++
		}
		must(t, rows.Err())
		if n != len(invs) {
			t.Fatalf("%d invoice.finalized events, want %d", n, len(invs))
		}
	})
}
