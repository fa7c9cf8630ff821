package payments

import (
	"context"
	"time"
)

// Gateway is the seam to a payment gateway. Adapters are named after what
// they wrap: payments/stripe (Stripe's API through stripe-go) and
// payments/paytest.Fake (in memory, for tests). Payments recorded by hand
// (bank transfers, cash) need no gateway: see Service.RecordManual, the
// manual adapter.
//
// Every call that moves money carries an idempotency key; an adapter must
// pass it on so that the same key never charges twice.
type Gateway interface {
	// CreatePayment charges the customer's saved method off-session for an
	// invoice attempt. The same Key answers the same payment, never a
	// second one. A decline is not an error: the payment comes back failed
	// with its decline code.
	CreatePayment(ctx context.Context, r PaymentRequest) (GatewayPayment, error)
	// FindPayment looks for the payment created with r.Key (after a crash,
	// once the key may have expired at the gateway); ok is false when the
	// gateway has none.
	FindPayment(ctx context.Context, r PaymentRequest) (p GatewayPayment, ok bool, err error)
	// Refund refunds amount (minor units) of payment reference.
	Refund(ctx context.Context, r RefundRequest) (GatewayRefund, error)
	// SetupSession starts a hosted session where the customer saves a
	// payment method (Stripe Checkout in setup mode).
	SetupSession(ctx context.Context, r SessionRequest) (HostedSession, error)
	// CheckoutSession starts a hosted session where the customer pays an
	// invoice (Stripe Checkout in payment mode).
	CheckoutSession(ctx context.Context, r SessionRequest) (HostedSession, error)
}

// PaymentRequest is a charge of one invoice attempt. Amount is in the
// currency's minor units (see ToMinor).
type PaymentRequest struct {
	Key              string // idempotency key of the attempt
	TenantID         string
	InvoiceID        string
	InvoiceNumber    string
	Attempt          int
	CustomerRef      string // the gateway's customer (cus_…)
	PaymentMethodRef string // the gateway's payment method (pm_…)
	Amount           int64
	Currency         string // ISO 4217, upper case
}

// GatewayPayment is a payment as the gateway reports it.
type GatewayPayment struct {
	Reference   string // pi_…
	Status      Status
	Amount      int64
	Currency    string
	DeclineCode string
	Message     string
}

// RefundRequest refunds part or all of a payment.
type RefundRequest struct {
	Key       string
	Reference string // the payment's reference
	Amount    int64
	Currency  string
}

// GatewayRefund is a refund as the gateway reports it.
type GatewayRefund struct {
	Reference string
	Status    string
}

// SessionRequest starts a hosted session for a customer: setup (save a
// method) or checkout (pay InvoiceID's Amount).
type SessionRequest struct {
	TenantID      string
	CustomerID    string
	CustomerRef   string
	CustomerEmail string
	InvoiceID     string
	InvoiceNumber string
	Amount        int64
	Currency      string
	SuccessURL    string
	CancelURL     string
}

// HostedSession is a hosted gateway page the customer is sent to.
type HostedSession struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ProviderConfig is a tenant's configuration of one gateway, secrets
// opened.
type ProviderConfig struct {
	Provider      string
	SecretKey     string
	WebhookSecret string
	APIBase       string
}

// GatewayFactory builds the gateway of a tenant's configuration.
type GatewayFactory func(ProviderConfig) (Gateway, error)
