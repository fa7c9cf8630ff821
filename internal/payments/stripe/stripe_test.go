package stripe

import (
	"context"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
)

// TestRequestShapesAgainstStripeMock sends every call the adapter makes
// to stripe-mock, which checks each request against Stripe's OpenAPI
// description (unknown or malformed parameters are refused).
func TestRequestShapesAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := paytest.StripeMock(t)
	gw, err := New(payments.ProviderConfig{Provider: payments.ProviderStripe, SecretKey: "sk_test_123", APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		amount, currency string
	}{{"12.34", "EUR"}, {"1234", "JPY"}, {"1.234", "KWD"}} {
		minor, err := payments.ToMinor(decimal.RequireFromString(c.amount), c.currency)
		if err != nil {
			t.Fatal(err)
		}
		p, err := gw.CreatePayment(ctx, payments.PaymentRequest{Key: "abacus:ten_1:inv_1:1:" + c.currency, TenantID: "ten_1", InvoiceID: "inv_1",
			InvoiceNumber: "INV-1", Attempt: 1, CustomerRef: "cus_123", PaymentMethodRef: "pm_123", Amount: minor, Currency: c.currency})
		if err != nil || !strings.HasPrefix(p.Reference, "pi_") {
			t.Fatalf("create payment %s %s: %+v, %v", c.amount, c.currency, p, err)
		}
	}
	if _, _, err := gw.FindPayment(ctx, payments.PaymentRequest{TenantID: "ten_1", InvoiceID: "inv_1", Attempt: 1}); err != nil {
		t.Fatalf("find payment: %v", err)
	}
	r, err := gw.Refund(ctx, payments.RefundRequest{Key: "abacus:refund:1", Reference: "pi_123", Amount: 500, Currency: "EUR"})
	if err != nil || !strings.HasPrefix(r.Reference, "re_") {
		t.Fatalf("refund: %+v, %v", r, err)
	}
	req := payments.SessionRequest{TenantID: "ten_1", CustomerID: "cus_1", CustomerEmail: "buyer@example.com", InvoiceID: "inv_1",
		InvoiceNumber: "INV-1", Amount: 11900, Currency: "EUR", SuccessURL: "https://app.example.com/ok", CancelURL: "https://app.example.com/cancel"}
	for name, f := range map[string]func(context.Context, payments.SessionRequest) (payments.HostedSession, error){
		"setup": gw.SetupSession, "checkout": gw.CheckoutSession} {
		s, err := f(ctx, req)
		if err != nil || !strings.HasPrefix(s.ID, "cs_") {
			t.Fatalf("%s session: %+v, %v", name, s, err)
		}
	}
}
