package portal

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
)

// PortalPayLink is the hosted "pay this invoice" page of one of the
// customer's open invoices.
type PortalPayLink struct {
	InvoiceID string    `json:"invoice_id"`
	URL       string    `json:"url" doc:"send the customer there: the invoice, its PDF and the payment provider's checkout"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PayLinks makes the signed pay link of invoice id of the tenant on ctx
// (the payments module's CreatePayLink, wired by the app).
type PayLinks func(ctx context.Context, invoiceID string) (url string, expiresAt time.Time, err error)

// SetPayLinks lets the portal hand the customer's open invoices to the
// payments module's hosted pay page. Call before serving.
func (s *Service) SetPayLinks(f PayLinks) { s.payLinks = f }

// PayLink returns the pay page of one of the customer's open invoices.
// Errors: "invoice_not_found" (not the customer's, or a draft),
// conflicts "invoice_not_payable" and "payments_not_available".
func (s *Service) PayLink(ctx context.Context, sess *PortalSession, id string) (PortalPayLink, error) {
	inv, err := s.Invoice(ctx, sess, id)
	if err != nil {
		return PortalPayLink{}, err
	}
	if inv.Status != billing.Open || !inv.AmountDue.IsPositive() {
		return PortalPayLink{}, abacus.Conflict("invoice_not_payable", "invoice %s is %s: there is nothing to pay", inv.Number, inv.Status)
	}
	if s.payLinks == nil {
		return PortalPayLink{}, abacus.Conflict("payments_not_available", "online payment is not available here; pay as the invoice says")
	}
	url, exp, err := s.payLinks(ctx, inv.ID)
	if err != nil {
		return PortalPayLink{}, err
	}
	return PortalPayLink{InvoiceID: inv.ID, URL: url, ExpiresAt: exp}, nil
}
