package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// DeliveryPreference is how a customer wants its invoices and credit notes.
type DeliveryPreference struct {
	CustomerID string    `json:"customer_id" example:"cus_01jbx7k2q9m4r8t6v3w5y0z1ab"`
	Channels   []string  `json:"channels" example:"[\"email\"]" doc:"email (the documents attached, to the billing contacts), download_link (an e-mail with signed, expiring links to download them) and/or webhook (the invoice events reach the tenant's webhook endpoints)"`
	Formats    []string  `json:"formats" example:"[\"pdf\",\"ubl\"]" doc:"documents attached to the mail: pdf, ubl (UBL 2.1 / Peppol BIS 3), cii (UN/CEFACT CII D16B), facturx (Factur-X/ZUGFeRD PDF with the CII inside), xrechnung-ubl, xrechnung-cii (the customer's Leitweg-ID as buyer reference); any combination"`
	Emails     []string  `json:"emails" example:"[\"ap@acme.example\"]" doc:"billing contacts; empty: the customer's e-mail"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// DeliveryPreferenceInput replaces a customer's preference.
type DeliveryPreferenceInput struct {
	Channels []string `json:"channels" minItems:"1" example:"[\"email\"]"`
	Formats  []string `json:"formats,omitempty" example:"[\"pdf\",\"ubl\"]" doc:"default [\"pdf\"]"`
	Emails   []string `json:"emails,omitempty" maxItems:"20" example:"[\"ap@acme.example\"]"`
}

// Delivery channels and document formats of a preference.
var (
	DocumentChannels = []string{DocumentEmail, DocumentWebhook, DocumentDownloadLink}
	DocumentFormats  = []string{"pdf", "ubl", "cii", "facturx", "xrechnung-ubl", "xrechnung-cii"}
)

func defaultPreference(customer string) DeliveryPreference {
	return DeliveryPreference{CustomerID: customer, Channels: []string{"email"}, Formats: []string{"pdf"}, Emails: []string{}}
}

func (s *Service) deliveryPreference(ctx context.Context, q db.Querier, tenant, customer string) (DeliveryPreference, error) {
	p := defaultPreference(customer)
	if customer == "" {
		return p, nil
	}
	var channels, formats, emails string
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT channels, formats, emails, updated_at FROM notification_customer_delivery
		WHERE tenant_id = $1 AND customer_id = $2`, tenant, customer).Scan(&channels, &formats, &emails, &at)
	if isNoRows(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("notifications: loading delivery preference: %w", err)
	}
	p.UpdatedAt = at.Time
	for dst, src := range map[*[]string]string{&p.Channels: channels, &p.Formats: formats, &p.Emails: emails} {
		if err := json.Unmarshal([]byte(src), dst); err != nil {
			return p, err
		}
	}
	return p, nil
}

// checkSubject refuses an invoice or credit note the tenant does not have.
func (s *Service) checkSubject(ctx context.Context, kind, id string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if src := s.sources(); src != nil {
		return src.Exists(ctx, tenant, kind, id)
	}
	return nil
}

// customer resolves a customer (id or external id) through the sources.
func (s *Service) customer(ctx context.Context, tenant, id string) (Contact, error) {
	src := s.sources()
	if src == nil {
		return Contact{ID: id}, nil
	}
	return src.Customer(ctx, tenant, id)
}

// GetDeliveryPreference returns a customer's preference (the default: PDF
// by e-mail to the customer's address, when never set).
func (s *Service) GetDeliveryPreference(ctx context.Context, customer string) (DeliveryPreference, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DeliveryPreference{}, err
	}
	c, err := s.customer(ctx, tenant, customer)
	if err != nil {
		return DeliveryPreference{}, err
	}
	return s.deliveryPreference(ctx, s.db, tenant, c.ID)
}

// SetDeliveryPreference replaces a customer's preference.
func (s *Service) SetDeliveryPreference(ctx context.Context, customer string, in DeliveryPreferenceInput) (DeliveryPreference, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DeliveryPreference{}, err
	}
	if len(in.Formats) == 0 {
		in.Formats = []string{"pdf"}
	}
	if err := checkPreference(&in); err != nil {
		return DeliveryPreference{}, err
	}
	c, err := s.customer(ctx, tenant, customer)
	if err != nil {
		return DeliveryPreference{}, err
	}
	p := DeliveryPreference{CustomerID: c.ID, Channels: in.Channels, Formats: in.Formats, Emails: in.Emails, UpdatedAt: s.clock.Now()}
	ch, _ := json.Marshal(p.Channels)
	fm, _ := json.Marshal(p.Formats)
	em, _ := json.Marshal(p.Emails)
	_, err = s.db.ExecContext(ctx, `INSERT INTO notification_customer_delivery (tenant_id, customer_id, channels, formats, emails, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, customer_id) DO UPDATE SET channels = $3, formats = $4, emails = $5, updated_at = $6`,
		tenant, c.ID, string(ch), string(fm), string(em), db.TimeOf(p.UpdatedAt))
	if err != nil {
		return DeliveryPreference{}, fmt.Errorf("saving delivery preference: %w", err)
	}
	return p, nil
}

func checkPreference(in *DeliveryPreferenceInput) error {
	var v abacus.Validation
	check := func(field string, list, allowed []string) {
		for i, x := range list {
			if !slices.Contains(allowed, x) {
				v.Add(fmt.Sprintf("%s[%d]", field, i), "must be one of %v", allowed)
			}
		}
	}
	check("channels", in.Channels, DocumentChannels)
	check("formats", in.Formats, DocumentFormats)
	for i, e := range in.Emails {
		addr, err := normalizeEmail("email", e)
		if err != nil {
			v.Add(fmt.Sprintf("emails[%d]", i), "must be an e-mail address")
			continue
		}
		in.Emails[i] = addr
	}
	if in.Emails == nil {
		in.Emails = []string{}
	}
	in.Channels, in.Formats = slices.Compact(slices.Sorted(slices.Values(in.Channels))), slices.Compact(slices.Sorted(slices.Values(in.Formats)))
	return v.Err("invalid_delivery_preference")
}
