package payments

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
)

// PaymentMethod is a customer's saved way to pay, as the gateway keeps
// it: Abacus stores only the gateway's reference and what a person needs
// to recognise the card.
type PaymentMethod struct {
	ID                string    `json:"id"`
	CustomerID        string    `json:"customer_id"`
	Provider          string    `json:"provider"`
	ProviderReference string    `json:"provider_reference" doc:"the gateway's id (pm_… on Stripe)"`
	Brand             string    `json:"brand"`
	Last4             string    `json:"last4"`
	ExpMonth          int       `json:"exp_month"`
	ExpYear           int       `json:"exp_year"`
	Status            string    `json:"status" enum:"active,detached"`
	Default           bool      `json:"default"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// MethodSetup is a payment method a gateway reports as set up for a
// customer (Stripe: setup_intent.succeeded with its payment method).
type MethodSetup struct {
	CustomerID  string // Abacus's customer id (from the session's metadata)
	CustomerRef string // the gateway's customer
	Reference   string // the gateway's payment method
	Brand       string
	Last4       string
	ExpMonth    int
	ExpYear     int
}

// attachMethod records m for its customer in tx and makes it the default.
// A method seen before is updated (a redelivered event changes nothing).
func (s *Service) attachMethod(ctx context.Context, tx *db.Tx, tenant, provider string, in MethodSetup, now time.Time) error {
	if _, err := catalog.LoadCustomer(ctx, tx, tenant, in.CustomerID); err != nil {
		return err
	}
	m, found, err := lockMethodByReference(ctx, tx, tenant, provider, in.Reference)
	if err != nil {
		return err
	}
	if !found {
		m = PaymentMethod{ID: abacus.NewID("pm"), CustomerID: in.CustomerID, Provider: provider, ProviderReference: in.Reference, CreatedAt: now}
	}
	m.Brand, m.Last4, m.ExpMonth, m.ExpYear, m.Status, m.UpdatedAt = in.Brand, in.Last4, in.ExpMonth, in.ExpYear, "active", now
	if err := saveMethod(ctx, tx, tenant, m, !found); err != nil {
		return err
	}
	row, _, err := loadCustomerRow(ctx, tx, tenant, m.CustomerID)
	if err != nil {
		return err
	}
	if row.collection == "" {
		row.collection = s.cfg.DefaultCollection
	}
	if in.CustomerRef != "" {
		row.providerCustomer = in.CustomerRef
	}
	row.defaultMethod, row.updatedAt = m.ID, now
	if err := putCustomerRow(ctx, tx, tenant, m.CustomerID, row); err != nil {
		return err
	}
	m.Default = true
	_, err = PaymentMethodAttached.Record(ctx, tx, tenant, m.ID, now, methodEvent(m))
	return err
}

// detachMethod marks the method with reference detached; unknown
// references are ignored (ok false).
func (s *Service) detachMethod(ctx context.Context, tx *db.Tx, tenant, provider, ref string, now time.Time) (bool, error) {
	m, found, err := lockMethodByReference(ctx, tx, tenant, provider, ref)
	if err != nil || !found || m.Status == "detached" {
		return found, err
	}
	m.Status, m.UpdatedAt = "detached", now
	if err := saveMethod(ctx, tx, tenant, m, false); err != nil {
		return true, err
	}
	row, ok, err := loadCustomerRow(ctx, tx, tenant, m.CustomerID)
	if err != nil {
		return true, err
	}
	if ok && row.defaultMethod == m.ID {
		row.defaultMethod, row.updatedAt = "", now
		if err := putCustomerRow(ctx, tx, tenant, m.CustomerID, row); err != nil {
			return true, err
		}
	}
	_, err = PaymentMethodDetached.Record(ctx, tx, tenant, m.ID, now, methodEvent(m))
	return true, err
}

func methodEvent(m PaymentMethod) PaymentMethodEvent {
	return PaymentMethodEvent{PaymentMethodID: m.ID, CustomerID: m.CustomerID, Provider: m.Provider, ProviderReference: m.ProviderReference,
		Brand: m.Brand, Last4: m.Last4, ExpMonth: m.ExpMonth, ExpYear: m.ExpYear, Default: m.Default}
}

// ListMethods returns customer id's payment methods. Errors:
// "customer_not_found".
func (s *Service) ListMethods(ctx context.Context, customerID string) (abacus.List[PaymentMethod], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[PaymentMethod]{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return abacus.List[PaymentMethod]{}, err
	}
	ms, err := customerMethods(ctx, s.db, tenant, cus.ID)
	if err != nil {
		return abacus.List[PaymentMethod]{}, err
	}
	row, _, err := loadCustomerRow(ctx, s.db, tenant, cus.ID)
	if err != nil {
		return abacus.List[PaymentMethod]{}, err
	}
	for i := range ms {
		ms[i].Default = ms[i].ID == row.defaultMethod
	}
	return abacus.ListOf(ms, ""), nil
}

// MethodSetupInput asks for a hosted page where a customer saves a payment
// method.
type MethodSetupInput struct {
	SuccessURL string `json:"success_url" doc:"where the gateway sends the customer back after saving the method"`
	CancelURL  string `json:"cancel_url" doc:"where the gateway sends the customer back when they give up"`
}

// StartSetup starts a hosted session (Stripe Checkout in setup mode)
// where customer id saves a payment method; the gateway's
// setup_intent.succeeded callback records it. Errors:
// "customer_not_found", "invalid_setup", conflict
// "payment_provider_not_configured".
func (s *Service) StartSetup(ctx context.Context, customerID string, in MethodSetupInput) (HostedSession, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return HostedSession{}, err
	}
	var v abacus.Validation
	checkURL(&v, "success_url", in.SuccessURL)
	checkURL(&v, "cancel_url", in.CancelURL)
	if err := v.Err("invalid_setup"); err != nil {
		return HostedSession{}, err
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, customerID)
	if err != nil {
		return HostedSession{}, err
	}
	gw, _, err := s.gateway(ctx, tenant)
	if err != nil {
		return HostedSession{}, err
	}
	row, _, err := loadCustomerRow(ctx, s.db, tenant, cus.ID)
	if err != nil {
		return HostedSession{}, err
	}
	return gw.SetupSession(ctx, SessionRequest{TenantID: tenant, CustomerID: cus.ID, CustomerRef: row.providerCustomer,
		CustomerEmail: cus.Email, Currency: cus.Currency, SuccessURL: in.SuccessURL, CancelURL: in.CancelURL})
}

// NotifyExpiring records payment_method.expiring, once per method, for
// every active card that expires at the end of next month (cards work
// through their expiry month): a month to ask for a new one before a
// charge fails. Notifications turn the event into an e-mail. It returns
// how many it recorded.
func (s *Service) NotifyExpiring(ctx context.Context) (int, error) {
	now := s.now()
	next := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	n := 0
	for {
		rows, err := expiringMethods(ctx, s.db, next.Year(), int(next.Month()), 500)
		if err != nil || len(rows) == 0 {
			return n, err
		}
		err = s.db.InTx(ctx, func(tx *db.Tx) error {
			for _, r := range rows {
				if err := markExpiryNotified(ctx, tx, r.tenant, r.m.ID, now); err != nil {
					return err
				}
				c, _, err := loadCustomerRow(ctx, tx, r.tenant, r.m.CustomerID)
				if err != nil {
					return err
				}
				r.m.Default = c.defaultMethod == r.m.ID
				if _, err := PaymentMethodExpiring.Record(ctx, tx, r.tenant, r.m.ID, now, methodEvent(r.m)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(rows)
	}
}
