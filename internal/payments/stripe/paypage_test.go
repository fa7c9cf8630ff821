package stripe

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
)

// recorder keeps the form bodies of the requests the adapter sends.
type recorder struct {
	mu    sync.Mutex
	forms map[string][]url.Values // path → bodies
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		v, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		r.forms[req.URL.Path] = append(r.forms[req.URL.Path], v)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// The hosted "pay this invoice" page of a send_invoice customer, on both
// engines, with Stripe's adapter talking to stripe-mock (which refuses a
// request that does not match Stripe's API): the signed link shows the
// invoice and its PDF; the form's POST creates a Checkout Session in
// payment mode for the amount due, with the invoice's and tenant's ids on
// its PaymentIntent, and answers 303 to it; the PaymentIntent's signed
// webhook pays the invoice; tampered and expired links change nothing.
func TestPayPageHandsOverToCheckout(t *testing.T) {
	t.Parallel()
	mock := paytest.StripeMock(t)
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ten := paytest.NewTenant(t, d, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		log := slog.New(slog.DiscardHandler)
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		svc, err := payments.NewService(d, ten.Clock, log, payments.Config{EncryptionKey: testKey, BaseURL: srv.URL}, ten.Billing)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{forms: map[string][]url.Values{}}
		svc.RegisterGateway(payments.ProviderStripe, func(cfg payments.ProviderConfig) (payments.Gateway, error) {
			return NewWithClient(cfg, &http.Client{Transport: rec, Timeout: 30 * time.Second})
		})
		if _, err := svc.PutProvider(ten.Ctx, payments.ProviderStripe, payments.ProviderSettings{SecretKey: "sk_test_abcdefgh",
			WebhookSecret: whsec, APIBase: mock}); err != nil {
			t.Fatal(err)
		}
		for pattern, h := range payments.PayPageRoutes(svc, log) {
			mux.Handle(pattern, h)
		}
		mux.Handle("POST /webhooks/stripe/{tenant_id}", &handler{svc: svc, log: log})
		s := &site{Tenant: ten, svc: svc, url: srv.URL + "/webhooks/stripe/" + ten.ID}

		inv := ten.Invoice("EUR", "119.00")
		if _, err := svc.PutCustomerBilling(ten.Ctx, inv.CustomerID, payments.CustomerBillingInput{CollectionMethod: payments.SendInvoice}); err != nil {
			t.Fatal(err)
		}
		link, err := svc.CreatePayLink(ten.Ctx, inv.ID)
		if err != nil || !strings.HasPrefix(link.URL, srv.URL+"/pay/pl_") || !link.ExpiresAt.After(ten.Clock.Now().Add(29*24*time.Hour)) {
			t.Fatalf("pay link: %+v %v", link, err)
		}
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(u string) (*http.Response, string) {
			t.Helper()
			res, err := noRedirect.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res, string(b)
		}
		post := func(u string) (*http.Response, string) {
			t.Helper()
			res, err := noRedirect.PostForm(u, url.Values{})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res, string(b)
		}

		res, body := get(link.URL)
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != 200 || !strings.Contains(body, "Invoice "+inv.Number) || !strings.Contains(body, "Pay 119.00 EUR") ||
			!strings.Contains(body, "Payments GmbH") || !strings.Contains(csp, "form-action 'self' https://checkout.stripe.com") ||
			!strings.Contains(csp, "default-src 'none'") || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("page: %d %s\n%s", res.StatusCode, csp, body)
		}
		if len(rec.forms) != 0 {
			t.Fatalf("showing the page called Stripe: %v", rec.forms)
		}
		res, pdf := get(link.URL + "/invoice.pdf")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf, "%PDF-") {
			t.Fatalf("pdf: %d %s %.40q", res.StatusCode, res.Header.Get("Content-Type"), pdf)
		}

		res, body = post(link.URL)
		to := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to, "https://") || !strings.Contains(body, to) {
			t.Fatalf("checkout: %d %q\n%s", res.StatusCode, to, body)
		}
		forms := rec.forms["/v1/checkout/sessions"]
		if len(forms) != 1 {
			t.Fatalf("checkout sessions created: %v", rec.forms)
		}
		f := forms[0]
		for k, want := range map[string]string{"mode": "payment", "line_items[0][price_data][unit_amount]": "11900",
			"line_items[0][price_data][currency]": "eur", "line_items[0][quantity]": "1",
			"payment_intent_data[metadata][" + MetaInvoice + "]": inv.ID, "payment_intent_data[metadata][" + MetaTenant + "]": ten.ID,
			"customer_email": "buyer@example.com", "success_url": link.URL + "?checkout=done", "cancel_url": link.URL} {
			if f.Get(k) != want {
				t.Errorf("checkout session %s = %q, want %q", k, f.Get(k), want)
			}
		}

		// Back from Checkout before the webhook: confirming. Then the
		// PaymentIntent's webhook (metadata only, as Checkout makes it)
		// pays the invoice.
		if _, body = get(link.URL + "?checkout=done"); !strings.Contains(body, "being confirmed") {
			t.Fatalf("back from checkout:\n%s", body)
		}
		s.deliver(t, s.event("payment_intent.succeeded", intent("pi_checkout_"+strings.ToLower(abacus.NewID("")), ten.ID, inv, 11900, nil)))
		if got := ten.Get(inv.ID); got.Status != "paid" {
			t.Fatalf("after the checkout's webhook: %s", got.Status)
		}
		if _, body = get(link.URL); !strings.Contains(body, "This invoice is paid") || strings.Contains(body, "<form") {
			t.Fatalf("paid page:\n%s", body)
		}
		if res, body = post(link.URL); res.StatusCode != http.StatusConflict || !strings.Contains(body, "nothing to pay") {
			t.Fatalf("paying a paid invoice: %d\n%s", res.StatusCode, body)
		}
		if _, err := svc.CreatePayLink(ten.Ctx, inv.ID); abacus.ErrorKind(err) != abacus.KindConflict {
			t.Fatalf("a link for a paid invoice: %v", err)
		}

		// Links that are not ours, or too old, show nothing of the invoice.
		other := ten.Invoice("EUR", "50.00")
		fresh, err := svc.CreatePayLink(ten.Ctx, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		i := len(fresh.URL) - 10 // a character of the signature with all its bits used
		tampered := fresh.URL[:i] + map[bool]string{true: "B", false: "A"}[fresh.URL[i] == 'A'] + fresh.URL[i+1:]
		swapped := strings.Replace(fresh.URL, fresh.URL[strings.Index(fresh.URL, "pl_"):strings.LastIndex(fresh.URL, ".")],
			link.URL[strings.Index(link.URL, "pl_"):strings.LastIndex(link.URL, ".")], 1)
		for name, u := range map[string]string{"tampered": tampered, "another link's signature": swapped, "garbage": srv.URL + "/pay/pl_x.y"} {
			for _, try := range []func(string) (*http.Response, string){get, post} {
				res, body := try(u)
				if res.StatusCode != 400 || !strings.Contains(body, "not valid") || strings.Contains(body, other.Number) {
					t.Errorf("%s: %d\n%s", name, res.StatusCode, body)
				}
			}
			if res, _ := get(u + "/invoice.pdf"); res.StatusCode != 400 {
				t.Errorf("%s pdf: %d", name, res.StatusCode)
			}
		}
		ten.Clock.Advance(31 * 24 * time.Hour)
		if res, body := post(fresh.URL); res.StatusCode != 400 || !strings.Contains(body, "expired") || strings.Contains(body, other.Number) {
			t.Fatalf("expired: %d\n%s", res.StatusCode, body)
		}
		if n := len(rec.forms["/v1/checkout/sessions"]); n != 1 {
			t.Fatalf("refused links reached Stripe: %d sessions", n)
		}
	})
}
