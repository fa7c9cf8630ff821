// Package paytest holds the payments module's test doubles and helpers;
// only tests import it. Fake is the documented in-memory gateway;
// StripeMock starts Stripe's own mock server (stripe-mock, pinned) for
// request-shape tests; Tenant builds a tenant with billing set up and
// open invoices to pay.
package paytest

import (
	"context"
	"fmt"
	"sync"

	"github.com/abacusbilling/abacus/internal/payments"
)

// Fake is an in-memory payments.Gateway. It behaves as Stripe does where
// the ledger depends on it: the same idempotency key answers the same
// payment (never a second charge), a decline is a failed payment with its
// decline code, and payments can be looked up by their key. Declines are
// set per payment method reference with Decline.
type Fake struct {
	mu       sync.Mutex
	byKey    map[string]payments.GatewayPayment
	declines map[string]string // method ref → decline code
	n        int
	// Creates counts CreatePayment calls that made a new payment.
	Creates int
	// Calls counts every CreatePayment call, replays included.
	Calls int
	// Hook, when set, runs after a payment is made and before it is
	// answered (crash tests stop the process there).
	Hook func(key string)
	// Refunds lists the refunds asked for.
	Refunds []payments.RefundRequest
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{byKey: map[string]payments.GatewayPayment{}, declines: map[string]string{}}
}

// Factory returns a factory that answers f for every tenant.
func (f *Fake) Factory() payments.GatewayFactory {
	return func(payments.ProviderConfig) (payments.Gateway, error) { return f, nil }
}

// Decline makes payments with method ref fail with code ("" succeeds
// again).
func (f *Fake) Decline(ref, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if code == "" {
		delete(f.declines, ref)
	} else {
		f.declines[ref] = code
	}
}

// Charges returns the payments made, by idempotency key.
func (f *Fake) Charges() map[string]payments.GatewayPayment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]payments.GatewayPayment, len(f.byKey))
	for k, v := range f.byKey {
		out[k] = v
	}
	return out
}

// CreatePayment implements payments.Gateway.
func (f *Fake) CreatePayment(_ context.Context, r payments.PaymentRequest) (payments.GatewayPayment, error) {
	f.mu.Lock()
	f.Calls++
	if p, ok := f.byKey[r.Key]; ok {
		f.mu.Unlock()
		return p, nil
	}
	f.n++
	f.Creates++
	p := payments.GatewayPayment{Reference: fmt.Sprintf("pi_fake_%d", f.n), Status: payments.StatusSucceeded, Amount: r.Amount, Currency: r.Currency}
	if code, ok := f.declines[r.PaymentMethodRef]; ok {
		p.Status, p.DeclineCode, p.Message = payments.StatusFailed, code, "declined: "+code
	}
	f.byKey[r.Key] = p
	hook := f.Hook
	f.mu.Unlock()
	if hook != nil {
		hook(r.Key)
	}
	return p, nil
}

// FindPayment implements payments.Gateway.
func (f *Fake) FindPayment(_ context.Context, r payments.PaymentRequest) (payments.GatewayPayment, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.byKey[r.Key]
	return p, ok, nil
}

// Refund implements payments.Gateway.
func (f *Fake) Refund(_ context.Context, r payments.RefundRequest) (payments.GatewayRefund, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Refunds = append(f.Refunds, r)
	return payments.GatewayRefund{Reference: fmt.Sprintf("re_fake_%d", len(f.Refunds)), Status: "succeeded"}, nil
}

// SetupSession implements payments.Gateway.
func (f *Fake) SetupSession(_ context.Context, r payments.SessionRequest) (payments.HostedSession, error) {
	return payments.HostedSession{ID: "cs_fake_setup_" + r.CustomerID, URL: "https://fake.example/setup/" + r.CustomerID}, nil
}

// CheckoutSession implements payments.Gateway.
func (f *Fake) CheckoutSession(_ context.Context, r payments.SessionRequest) (payments.HostedSession, error) {
	return payments.HostedSession{ID: "cs_fake_pay_" + r.InvoiceID, URL: "https://fake.example/pay/" + r.InvoiceID}, nil
}
