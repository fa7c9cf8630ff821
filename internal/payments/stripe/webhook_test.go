package stripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
)

const whsec = "whsec_test_secret_for_abacus"

var testKey = bytes.Repeat([]byte{9}, 32)

// site is a tenant with Stripe configured and the webhook route on a
// real HTTP server.
type site struct {
	*paytest.Tenant
	svc *payments.Service
	url string
	n   int
}

func newSite(t testing.TB, d *db.DB) *site {
	t.Helper()
	ten := paytest.NewTenant(t, d, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	svc, err := payments.NewService(d, ten.Clock, log, payments.Config{EncryptionKey: testKey}, ten.Billing)
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterGateway(payments.ProviderStripe, New)
	if _, err := svc.PutProvider(ten.Ctx, payments.ProviderStripe, payments.ProviderSettings{SecretKey: "sk_test_abcdefgh", WebhookSecret: whsec,
		APIBase: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/stripe/{tenant_id}", &handler{svc: svc, log: log})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &site{Tenant: ten, svc: svc, url: srv.URL + "/webhooks/stripe/" + ten.ID}
}

// event is a Stripe event (id, type, object) as JSON.
func (s *site) event(typ string, obj map[string]any) []byte {
	s.n++
	b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("evt_%s_%d", abacus.NewID(""), s.n), "object": "event", "type": typ,
		"api_version": "2025-01-27.acacia", "created": time.Now().Unix(), "data": map[string]any{"object": obj}})
	return b
}

// send posts payload signed with secret at at, as Stripe does.
func (s *site) send(t testing.TB, payload []byte, secret string, at time.Time) (int, string) {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at})
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(sp.Payload))
	req.Header.Set("Stripe-Signature", sp.Header)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func (s *site) deliver(t testing.TB, payloads ...[]byte) {
	t.Helper()
	for _, p := range payloads {
		if code, body := s.send(t, p, whsec, time.Now()); code != http.StatusOK {
			t.Fatalf("delivery: %d %s", code, body)
		}
	}
}

func intent(id, tenant string, inv billing.Invoice, minor int64, extra map[string]any) map[string]any {
	o := map[string]any{"id": id, "object": "payment_intent", "amount": minor, "currency": strings.ToLower(inv.Currency),
		"status": "succeeded", "metadata": map[string]string{MetaInvoice: inv.ID, MetaTenant: tenant}}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func dispute(id, pi string, minor int64, currency, status string) map[string]any {
	return map[string]any{"id": id, "object": "dispute", "amount": minor, "currency": strings.ToLower(currency), "status": status,
		"reason": "fraudulent", "payment_intent": pi}
}

// state is what the tests compare between orders of delivery.
func (s *site) state(t *testing.T, invoice string) string {
	t.Helper()
	inv := s.Get(invoice)
	ps, err := s.svc.ListPayments(s.Ctx, payments.PaymentFilter{InvoiceID: invoice})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := s.svc.InvoiceDisputes(s.Ctx, invoice)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("invoice %s due %s;", inv.Status, inv.AmountDue)
	for _, p := range ps.Data {
		out += fmt.Sprintf(" payment %s %s refunded %s;", p.Status, p.Amount, p.AmountRefunded)
	}
	for _, d := range ds {
		out += fmt.Sprintf(" dispute %s %s %s;", d.Kind, d.Status, d.Outcome)
	}
	return out
}

// twiceEach delivers every payload twice, in order.
func twiceEach(ps [][]byte) [][]byte {
	var out [][]byte
	for _, p := range ps {
		out = append(out, p, p)
	}
	return out
}

func TestWebhookStateFlows(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newSite(t, d)
		flows := map[string]struct {
			events func(inv billing.Invoice, pi string) [][]byte
			want   string
		}{
			"succeeded after processing, then a late failure": {
				events: func(inv billing.Invoice, pi string) [][]byte {
					return [][]byte{
						s.event("payment_intent.processing", intent(pi, s.ID, inv, 11900, map[string]any{"status": "processing"})),
						s.event("payment_intent.succeeded", intent(pi, s.ID, inv, 11900, nil)),
						s.event("payment_intent.payment_failed", intent(pi, s.ID, inv, 11900, map[string]any{"status": "requires_payment_method",
							"last_payment_error": map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}})),
					}
				},
				want: "invoice paid due 0; payment succeeded 119 refunded 0;",
			},
			"dispute created then won": {
				events: func(inv billing.Invoice, pi string) [][]byte {
					return [][]byte{
						s.event("payment_intent.succeeded", intent(pi, s.ID, inv, 11900, nil)),
						s.event("charge.dispute.created", dispute("dp_"+pi, pi, 11900, "EUR", "needs_response")),
						s.event("charge.dispute.updated", dispute("dp_"+pi, pi, 11900, "EUR", "under_review")),
						s.event("charge.dispute.closed", dispute("dp_"+pi, pi, 11900, "EUR", "won")),
					}
				},
				want: "invoice paid due 0; payment succeeded 119 refunded 0; dispute dispute won won;",
			},
			"dispute created then lost": {
				events: func(inv billing.Invoice, pi string) [][]byte {
					return [][]byte{
						s.event("payment_intent.succeeded", intent(pi, s.ID, inv, 11900, nil)),
						s.event("charge.dispute.created", dispute("dp_"+pi, pi, 11900, "EUR", "needs_response")),
						s.event("charge.dispute.closed", dispute("dp_"+pi, pi, 11900, "EUR", "lost")),
					}
				},
				want: "invoice open due 119; payment succeeded 119 refunded 0; dispute dispute lost lost;",
			},
			"partial refund": {
				events: func(inv billing.Invoice, pi string) [][]byte {
					return [][]byte{
						s.event("payment_intent.succeeded", intent(pi, s.ID, inv, 11900, nil)),
						s.event("charge.refunded", map[string]any{"id": "ch_" + pi, "object": "charge", "amount": 11900, "amount_refunded": 1900,
							"currency": "eur", "payment_intent": pi}),
						s.event("charge.refunded", map[string]any{"id": "ch_" + pi, "object": "charge", "amount": 11900, "amount_refunded": 4900,
							"currency": "eur", "payment_intent": pi}),
					}
				},
				want: "invoice open due 49; payment succeeded 119 refunded 49;",
			},
		}
		for name, f := range flows {
			for _, order := range []string{"in order", "twice each, reversed"} {
				inv := s.Invoice("EUR", "119.00")
				pi := "pi_" + strings.ReplaceAll(abacus.NewID(""), "_", "")
				evs := f.events(inv, pi)
				if order != "in order" {
					evs = twiceEach(evs)
					slices.Reverse(evs)
				}
				s.deliver(t, evs...)
				if got := s.state(t, inv.ID); got != f.want {
					t.Errorf("%s, %s: %s\nwant %s", name, order, got, f.want)
				}
			}
		}
		checkDisputeList(t, s)
	})
}

// checkDisputeList checks GET /api/v1/disputes's service on the flows'
// four disputes (two won, two lost, each once per order): each names its
// payment's customer and invoice and when it closed; the filters and
// pages select; another tenant sees none of them.
func checkDisputeList(t *testing.T, s *site) {
	t.Helper()
	var all []payments.Dispute
	for cursor := ""; ; {
		page, err := s.svc.ListDisputes(s.Ctx, payments.DisputeFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Data...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) != 4 {
		t.Fatalf("disputes listed: %d, want 4", len(all))
	}
	for _, d := range all {
		inv := s.Get(d.InvoiceID)
		if d.CustomerID == "" || d.CustomerID != inv.CustomerID || d.PaymentID == "" || d.ClosedAt == nil || d.Reason != "fraudulent" ||
			!strings.HasPrefix(d.ProviderReference, "dp_pi_") || d.Amount.String() != "119" || d.Currency != "EUR" {
			t.Errorf("listed dispute: %+v (invoice's customer %s)", d, inv.CustomerID)
		}
		got, err := s.svc.GetDispute(s.Ctx, d.ID)
		if err != nil || got.ID != d.ID || got.Status != d.Status {
			t.Errorf("get %s: %+v, %v", d.ID, got, err)
		}
	}
	count := func(f payments.DisputeFilter) int {
		page, err := s.svc.ListDisputes(s.Ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Data)
	}
	if won, lost, open := count(payments.DisputeFilter{Status: "won"}), count(payments.DisputeFilter{Status: "lost"}),
		count(payments.DisputeFilter{Status: "needs_response"}); won != 2 || lost != 2 || open != 0 {
		t.Errorf("by status: won %d lost %d needs_response %d, want 2 2 0", won, lost, open)
	}
	if n := count(payments.DisputeFilter{CustomerID: all[0].CustomerID, InvoiceID: all[0].InvoiceID}); n != 1 {
		t.Errorf("by customer and invoice: %d, want 1", n)
	}
	if _, err := s.svc.ListDisputes(s.Ctx, payments.DisputeFilter{Status: "open"}); abacus.ErrorKind(err) != abacus.KindInvalid {
		t.Errorf("an unknown status: %v, want invalid", err)
	}
	other := abacus.WithPrincipal(s.Ctx, &abacus.Principal{TenantID: "ten_other", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if page, err := s.svc.ListDisputes(other, payments.DisputeFilter{}); err != nil || len(page.Data) != 0 {
		t.Errorf("another tenant lists %d disputes (%v)", len(page.Data), err)
	}
	if _, err := s.svc.GetDispute(other, all[0].ID); abacus.ErrorKind(err) != abacus.KindNotFound {
		t.Errorf("another tenant gets a dispute: %v", err)
	}
}

func TestWebhookRefusesWhatIsNotStripes(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newSite(t, d)
		inv := s.Invoice("EUR", "119.00")
		good := s.event("payment_intent.succeeded", intent("pi_refused", s.ID, inv, 11900, nil))
		for name, c := range map[string]struct {
			payload []byte
			secret  string
			at      time.Time
			code    string
		}{
			"wrong secret":      {good, "whsec_other", time.Now(), "signature_invalid"},
			"stale timestamp":   {good, whsec, time.Now().Add(-6 * time.Minute), "signature_expired"},
			"malformed json":    {[]byte(`{"id": "evt_1", "type": `), whsec, time.Now(), "invalid_event"},
			"object unreadable": {[]byte(`{"id":"evt_x","type":"payment_intent.succeeded","data":{"object":{"id":17}}}`), whsec, time.Now(), "invalid_event"},
		} {
			code, body := s.send(t, c.payload, c.secret, c.at)
			if code != http.StatusBadRequest || !strings.Contains(body, `"code":"`+c.code+`"`) || strings.Contains(body, whsec) {
				t.Errorf("%s: %d %s", name, code, body)
			}
		}
		// No signature at all, and an unknown tenant.
		for name, url := range map[string]string{"unsigned": s.url, "unknown tenant": strings.Replace(s.url, s.ID, "ten_unknown", 1)} {
			res, err := http.Post(url, "application/json", bytes.NewReader(good))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d", name, res.StatusCode)
			}
		}
		if got := s.state(t, inv.ID); got != "invoice open due 119;" {
			t.Fatalf("refused events changed the invoice: %s", got)
		}
		// An event about an object Abacus does not know is acknowledged.
		code, body := s.send(t, s.event("payment_intent.succeeded", map[string]any{"id": "pi_elsewhere", "object": "payment_intent",
			"amount": 500, "currency": "eur", "status": "succeeded", "metadata": map[string]string{}}), whsec, time.Now())
		if code != http.StatusOK || !strings.Contains(body, `"known":false`) {
			t.Fatalf("unknown object: %d %s", code, body)
		}
		code, body = s.send(t, s.event("customer.created", map[string]any{"id": "cus_1", "object": "customer"}), whsec, time.Now())
		if code != http.StatusOK {
			t.Fatalf("unhandled type: %d %s", code, body)
		}
		// The accepted event, then its replay: paid once.
		s.deliver(t, good, good)
		if got := s.state(t, inv.ID); got != "invoice paid due 0; payment succeeded 119 refunded 0;" {
			t.Fatalf("after the event and its replay: %s", got)
		}
	})
}
