// Package stripe is the payments module's adapter to Stripe, through
// stripe-go (github.com/stripe/stripe-go/v82): PaymentIntents created
// off-session with an idempotency key per invoice attempt and metadata
// abacus_invoice_id, abacus_tenant_id and abacus_attempt; Checkout
// Sessions (setup mode to save a method, payment mode for the hosted
// invoice page); refunds; and the webhook route POST
// /webhooks/stripe/{tenant_id}, verified with stripe-go's webhook package
// and translated into payments.GatewayEvent.
package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/abacusbilling/abacus/internal/payments"
)

// Metadata keys Abacus puts on what it creates at Stripe; a PaymentIntent
// that carries them (Checkout Sessions, payment links) is matched to its
// invoice.
const (
	MetaInvoice  = "abacus_invoice_id"
	MetaTenant   = "abacus_tenant_id"
	MetaAttempt  = "abacus_attempt"
	MetaCustomer = "abacus_customer_id"
)

// Gateway is a tenant's Stripe account.
type Gateway struct {
	c *stripego.Client
}

var _ payments.Gateway = (*Gateway)(nil)

// New returns the gateway of a tenant's configuration (the factory
// payments.Service.RegisterGateway takes). APIBase empty is Stripe's API.
func New(cfg payments.ProviderConfig) (payments.Gateway, error) {
	return NewWithClient(cfg, &http.Client{Timeout: 30 * time.Second})
}

// NewWithClient is New with the HTTP client the calls go through.
func NewWithClient(cfg payments.ProviderConfig, hc *http.Client) (*Gateway, error) {
	bc := &stripego.BackendConfig{HTTPClient: hc, MaxNetworkRetries: stripego.Int64(2),
		LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull}}
	if cfg.APIBase != "" {
		bc.URL = stripego.String(cfg.APIBase)
	}
	b := stripego.GetBackendWithConfig(stripego.APIBackend, bc)
	return &Gateway{c: stripego.NewClient(cfg.SecretKey, stripego.WithBackends(&stripego.Backends{API: b, Connect: b, Uploads: b, MeterEvents: b}))}, nil
}

// CreatePayment creates and confirms a PaymentIntent off-session with
// r.Key as its idempotency key. A card error (a decline) is a failed
// payment, not an error.
func (g *Gateway) CreatePayment(ctx context.Context, r payments.PaymentRequest) (payments.GatewayPayment, error) {
	p := &stripego.PaymentIntentCreateParams{
		Amount: stripego.Int64(r.Amount), Currency: stripego.String(strings.ToLower(r.Currency)),
		Confirm: stripego.Bool(true), OffSession: stripego.Bool(true),
		Description: stripego.String("Invoice " + r.InvoiceNumber),
	}
	if r.CustomerRef != "" {
		p.Customer = stripego.String(r.CustomerRef)
	}
	if r.PaymentMethodRef != "" {
		p.PaymentMethod = stripego.String(r.PaymentMethodRef)
	}
	p.SetIdempotencyKey(r.Key)
	p.AddMetadata(MetaInvoice, r.InvoiceID)
	p.AddMetadata(MetaTenant, r.TenantID)
	p.AddMetadata(MetaAttempt, strconv.Itoa(r.Attempt))
	pi, err := g.c.V1PaymentIntents.Create(ctx, p)
	var se *stripego.Error
	if errors.As(err, &se) && se.Type == stripego.ErrorTypeCard {
		out := payments.GatewayPayment{Status: payments.StatusFailed, Amount: r.Amount, Currency: r.Currency,
			DeclineCode: string(se.DeclineCode), Message: se.Msg}
		if out.DeclineCode == "" {
			out.DeclineCode = string(se.Code)
		}
		if se.PaymentIntent != nil {
			out.Reference = se.PaymentIntent.ID
		}
		return out, nil
	}
	if err != nil {
		return payments.GatewayPayment{}, fmt.Errorf("stripe: creating the payment intent: %w", err)
	}
	return paymentOf(pi, ""), nil
}

// FindPayment searches the PaymentIntents for the attempt's metadata.
func (g *Gateway) FindPayment(ctx context.Context, r payments.PaymentRequest) (payments.GatewayPayment, bool, error) {
	q := fmt.Sprintf("metadata['%s']:'%s' AND metadata['%s']:'%d'", MetaInvoice, r.InvoiceID, MetaAttempt, r.Attempt)
	for pi, err := range g.c.V1PaymentIntents.Search(ctx, &stripego.PaymentIntentSearchParams{SearchParams: stripego.SearchParams{Query: q}}) {
		if err != nil {
			return payments.GatewayPayment{}, false, fmt.Errorf("stripe: searching payment intents: %w", err)
		}
		if pi.Metadata[MetaTenant] == r.TenantID {
			return paymentOf(pi, ""), true, nil
		}
	}
	return payments.GatewayPayment{}, false, nil
}

// Refund refunds part or all of a PaymentIntent.
func (g *Gateway) Refund(ctx context.Context, r payments.RefundRequest) (payments.GatewayRefund, error) {
	p := &stripego.RefundCreateParams{PaymentIntent: stripego.String(r.Reference), Amount: stripego.Int64(r.Amount)}
	p.SetIdempotencyKey(r.Key)
	re, err := g.c.V1Refunds.Create(ctx, p)
	if err != nil {
		return payments.GatewayRefund{}, fmt.Errorf("stripe: refunding %s: %w", r.Reference, err)
	}
	return payments.GatewayRefund{Reference: re.ID, Status: string(re.Status)}, nil
}

// SetupSession creates a Checkout Session in setup mode; the SetupIntent
// it makes carries the customer's and tenant's ids.
func (g *Gateway) SetupSession(ctx context.Context, r payments.SessionRequest) (payments.HostedSession, error) {
	p := &stripego.CheckoutSessionCreateParams{Mode: stripego.String(string(stripego.CheckoutSessionModeSetup)),
		Currency: stripego.String(strings.ToLower(r.Currency)), SuccessURL: stripego.String(r.SuccessURL), CancelURL: stripego.String(r.CancelURL),
		PaymentMethodTypes: []*string{stripego.String("card")},
		SetupIntentData:    &stripego.CheckoutSessionCreateSetupIntentDataParams{}}
	g.customer(p, r)
	p.SetupIntentData.AddMetadata(MetaCustomer, r.CustomerID)
	p.SetupIntentData.AddMetadata(MetaTenant, r.TenantID)
	p.AddMetadata(MetaCustomer, r.CustomerID)
	p.AddMetadata(MetaTenant, r.TenantID)
	return g.session(ctx, p)
}

// CheckoutSession creates a Checkout Session in payment mode for an
// invoice's amount due; its PaymentIntent carries the invoice's and
// tenant's ids, so its webhooks find the invoice.
func (g *Gateway) CheckoutSession(ctx context.Context, r payments.SessionRequest) (payments.HostedSession, error) {
	p := &stripego.CheckoutSessionCreateParams{Mode: stripego.String(string(stripego.CheckoutSessionModePayment)),
		SuccessURL: stripego.String(r.SuccessURL), CancelURL: stripego.String(r.CancelURL),
		LineItems: []*stripego.CheckoutSessionCreateLineItemParams{{Quantity: stripego.Int64(1), PriceData: &stripego.CheckoutSessionCreateLineItemPriceDataParams{
			Currency: stripego.String(strings.ToLower(r.Currency)), UnitAmount: stripego.Int64(r.Amount),
			ProductData: &stripego.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripego.String("Invoice " + r.InvoiceNumber)}}}},
		PaymentIntentData: &stripego.CheckoutSessionCreatePaymentIntentDataParams{}}
	g.customer(p, r)
	p.PaymentIntentData.AddMetadata(MetaInvoice, r.InvoiceID)
	p.PaymentIntentData.AddMetadata(MetaTenant, r.TenantID)
	p.AddMetadata(MetaInvoice, r.InvoiceID)
	p.AddMetadata(MetaTenant, r.TenantID)
	p.SetIdempotencyKey(fmt.Sprintf("abacus:%s:%s:checkout:%d", r.TenantID, r.InvoiceID, r.Amount))
	return g.session(ctx, p)
}

func (g *Gateway) customer(p *stripego.CheckoutSessionCreateParams, r payments.SessionRequest) {
	switch {
	case r.CustomerRef != "":
		p.Customer = stripego.String(r.CustomerRef)
	case r.CustomerEmail != "":
		p.CustomerEmail = stripego.String(r.CustomerEmail)
	}
}

func (g *Gateway) session(ctx context.Context, p *stripego.CheckoutSessionCreateParams) (payments.HostedSession, error) {
	cs, err := g.c.V1CheckoutSessions.Create(ctx, p)
	if err != nil {
		return payments.HostedSession{}, fmt.Errorf("stripe: creating a checkout session: %w", err)
	}
	out := payments.HostedSession{ID: cs.ID, URL: cs.URL}
	if cs.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(cs.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// paymentOf maps a PaymentIntent to the ledger's view; status overrides
// the intent's own when the event type says it.
func paymentOf(pi *stripego.PaymentIntent, status payments.Status) payments.GatewayPayment {
	out := payments.GatewayPayment{Reference: pi.ID, Amount: pi.Amount, Currency: strings.ToUpper(string(pi.Currency)), Status: status}
	if out.Status == "" {
		switch pi.Status {
		case stripego.PaymentIntentStatusSucceeded:
			out.Status = payments.StatusSucceeded
		case stripego.PaymentIntentStatusProcessing:
			out.Status = payments.StatusProcessing
		case stripego.PaymentIntentStatusCanceled:
			out.Status = payments.StatusCanceled
		case stripego.PaymentIntentStatusRequiresPaymentMethod:
			if pi.LastPaymentError != nil {
				out.Status = payments.StatusFailed
			} else {
				out.Status = payments.StatusPending
			}
		default: // requires_action, requires_confirmation, requires_capture
			out.Status = payments.StatusPending
		}
	}
	if e := pi.LastPaymentError; e != nil && out.Status == payments.StatusFailed {
		out.DeclineCode, out.Message = string(e.DeclineCode), e.Msg
		if out.DeclineCode == "" {
			out.DeclineCode = string(e.Code)
		}
	}
	return out
}
