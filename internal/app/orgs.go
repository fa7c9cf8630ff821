package app

import (
	"context"
	"encoding/json"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Organizations returns the process's organization service, built on
// first use with the end-user service it hooks into (personal
// organizations on sign-up, org claims, max_devices on sign-in): a role
// that signs end users in must build it.
func (a *App) Organizations() *org.Service {
	m := a.modules()
	m.orgOnce.Do(func() {
		m.orgs = org.New(a.DB, a.Clock, a.Log.With("component", "org"), a.EndUsers(),
			orgCustomers{m.catalog}, orgEntitlements{m.subs}, org.WithMailer(enduser.MailerFunc(a.mailEndUser)))
		// The entitlement check of max_devices answers the devices in use.
		m.subs.UseLiveUsage(org.FeatureMaxDevices, func(ctx context.Context, tenant, customerID string) (decimal.Decimal, error) {
			n, err := m.orgs.DevicesOfCustomer(ctx, tenant, customerID)
			return decimal.NewFromInt(int64(n)), err
		})
	})
	return m.orgs
}

// orgCustomers is the catalog as organizations use it.
type orgCustomers struct{ c *catalog.Service }

func (o orgCustomers) CreateCustomer(ctx context.Context, tx *db.Tx, c org.NewCustomer) (string, error) {
	cus, err := o.c.CreateCustomerIn(ctx, tx, catalog.CustomerInput{Name: c.Name, Email: c.Email, Currency: c.Currency, ExternalID: c.ExternalID})
	return cus.ID, err
}

func (o orgCustomers) CustomerID(ctx context.Context, q db.Querier, tenant, ref string) (string, error) {
	cus, err := catalog.LoadCustomer(ctx, q, tenant, ref)
	return cus.ID, err
}

// orgEntitlements reads static features (max_devices) through the
// subscription module's cached entitlement check.
type orgEntitlements struct{ s *subscription.Service }

func (o orgEntitlements) StaticValue(ctx context.Context, tenant, customerID, feature string) (json.RawMessage, bool, error) {
	e, err := o.s.Check(subscription.WithoutLiveUsage(tenantCtx(ctx, tenant)), customerID, feature)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil, false, nil // the tenant has no such feature
	}
	if err != nil || !e.HasAccess || len(e.Value) == 0 {
		return nil, false, err
	}
	return e.Value, true, nil
}
