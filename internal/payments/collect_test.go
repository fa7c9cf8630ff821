package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
	"github.com/abacusbilling/abacus/internal/payments/stripe"
)

var key = bytes.Repeat([]byte{7}, 32)

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func newPayments(t testing.TB, d *db.DB, clock abacus.Clock, bill *billing.Service) *payments.Service {
	t.Helper()
	svc, err := payments.NewService(d, clock, slog.New(slog.DiscardHandler), payments.Config{EncryptionKey: key}, bill)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// withMethod gives inv's customer a default card at the gateway.
func withMethod(t testing.TB, svc *payments.Service, ten *paytest.Tenant, provider string, inv billing.Invoice, ref string) {
	t.Helper()
	if _, err := svc.HandleGatewayEvent(ten.Ctx, ten.ID, provider, payments.GatewayEvent{ID: "evt_setup_" + ref, Type: "setup_intent.succeeded",
		MethodSetup: &payments.MethodSetup{CustomerID: inv.CustomerID, CustomerRef: "cus_" + ref, Reference: ref, Brand: "visa", Last4: "4242",
			ExpMonth: 4, ExpYear: 2026}}); err != nil {
		t.Fatal(err)
	}
}

func TestCollectChargesOnceAndClassifiesDeclines(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ten := paytest.NewTenant(t, d, start)
		svc := newPayments(t, d, ten.Clock, ten.Billing)
		fake := paytest.NewFake()
		svc.RegisterGateway(payments.ProviderFake, fake.Factory())
		if _, err := svc.Collect(ten.Ctx, ten.Invoice("EUR", "10.00").ID, 1); abacus.ErrorKind(err) != abacus.KindConflict {
			t.Fatalf("collect without a gateway: %v", err)
		}
		if _, err := svc.PutProvider(ten.Ctx, payments.ProviderFake, payments.ProviderSettings{SecretKey: "fake_key_123", WebhookSecret: "whsec_fake_1"}); err != nil {
			t.Fatal(err)
		}
		// No payment method: a hard failure, no gateway call.
		bare := ten.Invoice("EUR", "10.00")
		p, err := svc.Collect(ten.Ctx, bare.ID, 1)
		if err != nil || p.Status != payments.StatusFailed || p.DeclineCode != "no_payment_method" || p.DeclineKind != payments.DeclineHard {
			t.Fatalf("no method: %+v, %v", p, err)
		}
		// A card that works: paid, and a second call of the attempt changes nothing.
		inv := ten.Invoice("JPY", "1200")
		withMethod(t, svc, ten, payments.ProviderFake, inv, "pm_ok")
		p, err = svc.Collect(ten.Ctx, inv.ID, 1)
		if err != nil || p.Status != payments.StatusSucceeded || p.Amount.String() != "1200" || p.Attempt != 1 {
			t.Fatalf("collect: %+v, %v", p, err)
		}
		again, err := svc.Collect(ten.Ctx, inv.ID, 1)
		if err != nil || again.ID != p.ID || fake.Creates != 1 {
			t.Fatalf("collect again: %+v, %v; gateway creates %d", again, err, fake.Creates)
		}
		if got := ten.Get(inv.ID); got.Status != billing.Paid {
			t.Fatalf("invoice %s after collection", got.Status)
		}
		if _, err := svc.Collect(ten.Ctx, inv.ID, 2); abacus.ErrorKind(err) != abacus.KindConflict {
			t.Fatalf("collecting a paid invoice: %v", err)
		}
		// A credit note refunded to the card: the gateway refunds it and the invoice is due again.
		cn, err := ten.Billing.CreateCreditNote(ten.Ctx, billing.CreditNoteInput{InvoiceID: inv.ID, Amount: ptr(num("500")), Reason: "goodwill"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := svc.Refund(ten.Ctx, p.ID, payments.RefundInput{CreditNoteID: cn.ID})
		if err != nil || r.AmountRefunded.String() != cn.Total.String() || len(fake.Refunds) != 1 || fake.Refunds[0].Amount != cn.Total.IntPart() {
			t.Fatalf("refund of a credit note: %+v, %v; gateway refunds %+v", r, err, fake.Refunds)
		}
		if got := ten.Get(inv.ID); got.Status != billing.Open || !got.AmountDue.Equal(cn.Total) {
			t.Fatalf("after the refund: %s due %s, want open %s", got.Status, got.AmountDue, cn.Total)
		}
		if _, err := svc.Refund(ten.Ctx, p.ID, payments.RefundInput{Amount: ptr(num("5000"))}); abacus.ErrorKind(err) != abacus.KindInvalid {
			t.Fatalf("refunding more than is left: %v", err)
		}
		// Declines: soft is retried by dunning, hard is not.
		for code, kind := range map[string]payments.DeclineKind{"insufficient_funds": payments.DeclineSoft, "stolen_card": payments.DeclineHard} {
			inv := ten.Invoice("KWD", "1.234")
			ref := "pm_" + code
			withMethod(t, svc, ten, payments.ProviderFake, inv, ref)
			fake.Decline(ref, code)
			p, err := svc.Collect(ten.Ctx, inv.ID, 1)
			if err != nil || p.Status != payments.StatusFailed || p.DeclineCode != code || p.DeclineKind != kind || p.Amount.String() != "1.234" {
				t.Fatalf("%s: %+v, %v", code, p, err)
			}
			if got := ten.Get(inv.ID); got.Status != billing.Open || got.AmountDue.String() != "1.234" {
				t.Fatalf("%s left the invoice %s due %s", code, got.Status, got.AmountDue)
			}
			fake.Decline(ref, "")
			if p, err := svc.Collect(ten.Ctx, inv.ID, 2); err != nil || p.Status != payments.StatusSucceeded {
				t.Fatalf("%s, second attempt: %+v, %v", code, p, err)
			}
		}
		// The card expiring at the end of next month is noticed once.
		ten.Clock.Set(time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC))
		n, err := svc.NotifyExpiring(ten.Ctx)
		if err != nil || n != 3 {
			t.Fatalf("expiring cards noticed: %d, %v; want 3", n, err)
		}
		if n, err := svc.NotifyExpiring(ten.Ctx); err != nil || n != 0 {
			t.Fatalf("noticed again: %d, %v", n, err)
		}
		// Once per card and expiry: the same card reported again with the
		// same expiry is not noticed again; renewed, its new expiry is.
		renew := func(ref string, month int) {
			t.Helper()
			if _, err := svc.HandleGatewayEvent(ten.Ctx, ten.ID, payments.ProviderFake, payments.GatewayEvent{ID: fmt.Sprintf("evt_renew_%s_%d", ref, month),
				Type: "setup_intent.succeeded", MethodSetup: &payments.MethodSetup{CustomerID: customerOf(t, svc, ten, ref), Reference: ref, Brand: "visa",
					Last4: "4242", ExpMonth: month, ExpYear: 2026}}); err != nil {
				t.Fatal(err)
			}
		}
		renew("pm_insufficient_funds", 4)
		renew("pm_stolen_card", 5)
		if n, err := svc.NotifyExpiring(ten.Ctx); err != nil || n != 0 {
			t.Fatalf("noticed again in March: %d, %v", n, err)
		}
		ten.Clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
		if n, err := svc.NotifyExpiring(ten.Ctx); err != nil || n != 1 {
			t.Fatalf("the renewed card, in April: %d, %v; want 1", n, err)
		}
	})
}

// customerOf is the customer of the payment method with gateway
// reference ref.
func customerOf(t *testing.T, svc *payments.Service, ten *paytest.Tenant, ref string) string {
	t.Helper()
	var id string
	if err := ten.DB.QueryRowContext(ten.Ctx, `SELECT customer_id FROM payment_methods WHERE tenant_id = $1 AND provider_reference = $2`,
		ten.ID, ref).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// fakeStripe is Stripe's payment_intents endpoint as far as idempotency
// goes: a key seen before answers what it answered, else a payment is
// made. The first time a payment is made, made is closed before any answer
// (the test kills the caller then).
type fakeStripe struct {
	mu      sync.Mutex
	byKey   map[string][]byte
	creates int
	made    chan struct{}
	hold    bool
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/payment_intents" {
		http.Error(w, `{"error":{"type":"invalid_request_error","message":"not faked"}}`, http.StatusNotFound)
		return
	}
	_ = r.ParseForm()
	k := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	body, seen := f.byKey[k]
	if !seen {
		f.creates++
		amount, _ := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		body, _ = json.Marshal(map[string]any{"id": fmt.Sprintf("pi_crash_%d", f.creates), "object": "payment_intent", "amount": amount,
			"currency": r.PostForm.Get("currency"), "status": "succeeded", "metadata": map[string]string{
				stripe.MetaInvoice: r.PostForm.Get("metadata[abacus_invoice_id]"), stripe.MetaTenant: r.PostForm.Get("metadata[abacus_tenant_id]")}})
		f.byKey[k] = body
	}
	hold := f.hold && !seen
	f.mu.Unlock()
	if hold {
		close(f.made)
		<-r.Context().Done() // the caller is killed before it hears back
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// TestCrashBetweenChargeAndRecordChargesOnce kills (SIGKILL) a process
// in the middle of Collect: after the gateway made the payment and before
// the answer was recorded. Reconcile, in a new service on the same
// database, replays the attempt with the same idempotency key: one
// charge, and the invoice is paid.
func TestCrashBetweenChargeAndRecordChargesOnce(t *testing.T) {
	t.Parallel()
	if os.Getenv("ABACUS_PAY_CRASH_CHILD") != "" {
		return // the child's work is in TestCrashChild
	}
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			var opts db.Options
			if engine == db.SQLite {
				opts.SQLitePath = filepath.Join(t.TempDir(), "crash.db")
			} else {
				opts.URL = dbtest.NewSchema(t)
			}
			d, err := db.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if _, err := d.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			gw := &fakeStripe{byKey: map[string][]byte{}, made: make(chan struct{}), hold: true}
			srv := httptest.NewServer(gw)
			t.Cleanup(srv.Close)
			ten := paytest.NewTenant(t, d, start)
			svc := newPayments(t, d, ten.Clock, ten.Billing)
			svc.RegisterGateway(payments.ProviderStripe, stripe.New)
			if _, err := svc.PutProvider(ten.Ctx, payments.ProviderStripe, payments.ProviderSettings{SecretKey: "sk_test_crash1", WebhookSecret: "whsec_crash",
				APIBase: srv.URL}); err != nil {
				t.Fatal(err)
			}
			inv := ten.Invoice("EUR", "119.00")
			withMethod(t, svc, ten, payments.ProviderStripe, inv, "pm_crash")

			child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
			child.Env = append(os.Environ(), "ABACUS_PAY_CRASH_CHILD=1", "CRASH_SQLITE="+opts.SQLitePath, "CRASH_URL="+opts.URL,
				"CRASH_TENANT="+ten.ID, "CRASH_INVOICE="+inv.ID, "CRASH_AT="+ten.Clock.Now().Format(time.RFC3339Nano))
			var out bytes.Buffer
			child.Stdout, child.Stderr = &out, &out
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-gw.made:
			case <-time.After(60 * time.Second):
				_ = child.Process.Kill()
				t.Fatalf("the child never reached the gateway:\n%s", out.String())
			}
			_ = child.Process.Signal(syscall.SIGKILL)
			_ = child.Wait()

			ps, err := svc.ListPayments(ten.Ctx, payments.PaymentFilter{InvoiceID: inv.ID})
			if err != nil || len(ps.Data) != 1 || ps.Data[0].Status != payments.StatusPending {
				t.Fatalf("after the crash: %+v, %v\n%s", ps.Data, err, out.String())
			}
			ten.Clock.Advance(2 * time.Minute)
			if n, err := svc.Reconcile(ten.Ctx); err != nil || n != 1 {
				t.Fatalf("reconcile: %d, %v", n, err)
			}
			ps, _ = svc.ListPayments(ten.Ctx, payments.PaymentFilter{InvoiceID: inv.ID})
			if len(ps.Data) != 1 || ps.Data[0].Status != payments.StatusSucceeded || ps.Data[0].ProviderReference != "pi_crash_1" {
				t.Fatalf("after reconcile: %+v", ps.Data)
			}
			if got := ten.Get(inv.ID); got.Status != billing.Paid {
				t.Fatalf("invoice %s after reconcile", got.Status)
			}
			if p, err := svc.Collect(ten.Ctx, inv.ID, 1); err != nil || p.ID != ps.Data[0].ID {
				t.Fatalf("collect after reconcile: %+v, %v", p, err)
			}
			gw.mu.Lock()
			defer gw.mu.Unlock()
			if gw.creates != 1 {
				t.Fatalf("the gateway made %d payments, want 1", gw.creates)
			}
		})
	}
}

// TestCrashChild is the process TestCrashBetweenChargeAndRecordChargesOnce
// kills; it does nothing unless started by it.
func TestCrashChild(t *testing.T) {
	if os.Getenv("ABACUS_PAY_CRASH_CHILD") == "" {
		t.Skip("run by TestCrashBetweenChargeAndRecordChargesOnce")
	}
	d, err := db.Open(context.Background(), db.Options{SQLitePath: os.Getenv("CRASH_SQLITE"), URL: os.Getenv("CRASH_URL")})
	if err != nil {
		t.Fatal(err)
	}
	at, _ := time.Parse(time.RFC3339Nano, os.Getenv("CRASH_AT"))
	clock := abacus.NewFakeClock(at)
	log := slog.New(slog.DiscardHandler)
	svc := newPayments(t, d, clock, billing.NewService(d, clock, log, billing.Config{}, nil, nil))
	svc.RegisterGateway(payments.ProviderStripe, stripe.New)
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: os.Getenv("CRASH_TENANT"), Kind: "system",
		Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	_, err = svc.Collect(ctx, os.Getenv("CRASH_INVOICE"), 1)
	t.Fatalf("Collect returned (%v): the parent should have killed this process", err)
}

func num(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ptr[T any](v T) *T { return &v }
