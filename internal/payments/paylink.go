package payments

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/identity"
)

// PayLink is a signed link to the hosted "pay this invoice" page of one
// invoice. Whoever holds it can see that invoice and pay it, nothing
// else, until it expires.
type PayLink struct {
	InvoiceID string    `json:"invoice_id"`
	URL       string    `json:"url" doc:"the hosted page: send it to the customer (it is a credential for this invoice until expires_at)"`
	ExpiresAt time.Time `json:"expires_at"`
}

// payTokenPrefix starts every pay link token.
const payTokenPrefix = "pl_"

// payToken signs (tenant, invoice, expiry) with the service's link key:
// pl_<base64url(tenant␀invoice␀unix expiry)>.<base64url(HMAC-SHA256)>.
func (s *Service) payToken(tenant, invoice string, exp time.Time) string {
	body := tenant + "\x00" + invoice + "\x00" + strconv.FormatInt(exp.Unix(), 10)
	mac := hmac.New(sha256.New, s.linkKey)
	mac.Write([]byte(body))
	enc := base64.RawURLEncoding
	return payTokenPrefix + enc.EncodeToString([]byte(body)) + "." + enc.EncodeToString(mac.Sum(nil))
}

// openPayToken verifies token (constant-time) and its expiry at now.
// Errors: "pay_link_invalid" (malformed or not signed by this
// installation), "pay_link_expired".
func (s *Service) openPayToken(token string, now time.Time) (tenant, invoice string, err error) {
	invalid := abacus.Invalid("pay_link_invalid", "this payment link is not valid: open the whole link you were sent, or ask for a new one")
	rest, ok := strings.CutPrefix(token, payTokenPrefix)
	if !ok || len(token) > 512 {
		return "", "", invalid
	}
	b64, sig64, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", invalid
	}
	enc := base64.RawURLEncoding
	body, err1 := enc.DecodeString(b64)
	sig, err2 := enc.DecodeString(sig64)
	if err1 != nil || err2 != nil {
		return "", "", invalid
	}
	mac := hmac.New(sha256.New, s.linkKey)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", "", invalid
	}
	parts := strings.Split(string(body), "\x00")
	if len(parts) != 3 {
		return "", "", invalid
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", invalid
	}
	if !now.Before(time.Unix(exp, 0)) {
		return "", "", abacus.Invalid("pay_link_expired", "this payment link has expired: ask the seller for a new one")
	}
	return parts[0], parts[1], nil
}

func (s *Service) payURL(token string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/pay/" + token
}

// CreatePayLink returns a signed link to the hosted page where the
// customer of invoice id sees it (and its PDF) and pays its amount due
// through the gateway's hosted checkout. It is valid for the configured
// PayLinkTTL. Errors: "invoice_not_found", conflict "invoice_not_payable"
// (a draft, or an invoice paid, voided or written off).
func (s *Service) CreatePayLink(ctx context.Context, invoiceID string) (PayLink, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PayLink{}, err
	}
	inv, err := s.billing.GetInvoice(ctx, invoiceID)
	if err != nil {
		return PayLink{}, err
	}
	if inv.Status != billing.Open || !inv.AmountDue.IsPositive() {
		return PayLink{}, abacus.Conflict("invoice_not_payable", "invoice %s is %s with %s %s due: there is nothing to pay", inv.ID, inv.Status,
			inv.AmountDue, inv.Currency)
	}
	exp := s.now().Add(s.cfg.PayLinkTTL).Truncate(time.Second)
	return PayLink{InvoiceID: inv.ID, URL: s.payURL(s.payToken(tenant, inv.ID, exp)), ExpiresAt: exp}, nil
}

// PayView is what the hosted page shows of one invoice.
type PayView struct {
	Seller, Customer     string
	Number, Currency     string
	Status               string
	IssuedAt, DueAt      *time.Time
	Lines                []PayLine
	Subtotal, Tax, Total string
	Credits, Paid, Due   string
	Payable              bool
}

// PayLine is one line of the hosted page's invoice.
type PayLine struct{ Description, Amount string }

// payInvoice opens token and reads its invoice with the tenant on the
// context (errors of openPayToken; "invoice_not_found").
func (s *Service) payInvoice(ctx context.Context, token string) (context.Context, string, billing.Invoice, error) {
	tenant, id, err := s.openPayToken(token, s.now())
	if err != nil {
		return ctx, "", billing.Invoice{}, err
	}
	ctx = tenantCtx(ctx, tenant)
	inv, err := s.billing.GetInvoice(ctx, id)
	if err == nil && inv.Status == billing.Draft {
		err = abacus.NotFound("invoice", id)
	}
	return ctx, tenant, inv, err
}

// PayPage returns the view of the invoice a pay link names. Errors:
// "pay_link_invalid", "pay_link_expired", "invoice_not_found".
func (s *Service) PayPage(ctx context.Context, token string) (PayView, error) {
	ctx, tenant, inv, err := s.payInvoice(ctx, token)
	if err != nil {
		return PayView{}, err
	}
	seller, err := identity.TenantName(ctx, s.db, tenant)
	if err != nil {
		return PayView{}, wrap("reading the seller's name", err)
	}
	v := PayView{Seller: seller, Number: inv.Number, Currency: inv.Currency, Status: string(inv.Status), IssuedAt: inv.FinalizedAt,
		DueAt: inv.DueAt, Subtotal: inv.Subtotal.StringFixed(digits(inv.Currency)), Tax: inv.TaxTotal.StringFixed(digits(inv.Currency)),
		Total: inv.Total.StringFixed(digits(inv.Currency)), Due: inv.AmountDue.StringFixed(digits(inv.Currency)),
		Payable: inv.Status == billing.Open && inv.AmountDue.IsPositive()}
	if inv.CreditsApplied.IsPositive() {
		v.Credits = inv.CreditsApplied.StringFixed(digits(inv.Currency))
	}
	if paid := inv.Total.Sub(inv.CreditsApplied).Sub(inv.AmountDue); paid.IsPositive() && inv.Status == billing.Open {
		v.Paid = paid.StringFixed(digits(inv.Currency))
	}
	if c, err := catalog.LoadCustomer(ctx, s.db, tenant, inv.CustomerID); err == nil {
		v.Customer = c.Name
	}
	for _, l := range inv.Lines {
		v.Lines = append(v.Lines, PayLine{Description: l.Description, Amount: l.NetAmount.StringFixed(digits(inv.Currency))})
	}
	return v, nil
}

func digits(currency string) int32 { return document.CurrencyExponent(currency) }

// PayPDF renders the invoice a pay link names as PDF, with its file
// name. Errors: those of PayPage, and billing's.
func (s *Service) PayPDF(ctx context.Context, token string) ([]byte, string, error) {
	ctx, _, inv, err := s.payInvoice(ctx, token)
	if err != nil {
		return nil, "", err
	}
	d, err := s.billing.InvoiceDocument(ctx, inv.ID)
	if err != nil {
		return nil, "", err
	}
	b, err := document.Render(d, document.FormatPDF)
	name := inv.Number
	if name == "" {
		name = inv.ID
	}
	return b, strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name) + ".pdf", err
}

// PayCheckout starts the gateway's hosted checkout (Stripe Checkout in
// payment mode) for the amount due of the invoice a pay link names; the
// payment it makes carries the invoice's and tenant's ids, so its
// webhooks join the invoice's ledger. The customer comes back to the pay
// page. Errors: those of PayPage; conflicts "invoice_not_payable",
// "payment_provider_not_configured".
func (s *Service) PayCheckout(ctx context.Context, token string) (HostedSession, error) {
	ctx, tenant, inv, err := s.payInvoice(ctx, token)
	if err != nil {
		return HostedSession{}, err
	}
	if inv.Status != billing.Open || !inv.AmountDue.IsPositive() {
		return HostedSession{}, abacus.Conflict("invoice_not_payable", "invoice %s is %s: there is nothing to pay", inv.Number, inv.Status)
	}
	gw, _, err := s.gateway(ctx, tenant)
	if err != nil {
		return HostedSession{}, err
	}
	minor, err := ToMinor(inv.AmountDue, inv.Currency)
	if err != nil {
		return HostedSession{}, err
	}
	req := SessionRequest{TenantID: tenant, CustomerID: inv.CustomerID, InvoiceID: inv.ID, InvoiceNumber: inv.Number, Amount: minor,
		Currency: inv.Currency, SuccessURL: s.payURL(token) + "?checkout=done", CancelURL: s.payURL(token)}
	if c, err := catalog.LoadCustomer(ctx, s.db, tenant, inv.CustomerID); err == nil {
		req.CustomerEmail = c.Email
	}
	if row, ok, err := loadCustomerRow(ctx, s.db, tenant, inv.CustomerID); err == nil && ok {
		req.CustomerRef = row.providerCustomer
	}
	hs, err := gw.CheckoutSession(ctx, req)
	if err != nil {
		s.log.Warn("starting a hosted checkout failed", "tenant", tenant, "invoice", inv.ID, "err", err)
		return HostedSession{}, abacus.Errorf(abacus.KindUnavailable, "gateway_unavailable", "the payment page could not be opened; try again in a minute")
	}
	return hs, nil
}
