package app

import (
	"context"
	"sync"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser/org"

	"github.com/abacusbilling/abacus/internal/portal"
)

// portalMod is the customer portal service the api role builds once.
type portalMod struct {
	once sync.Once
	svc  *portal.Service
}

// Portal returns the process's customer portal, built on first use. Its
// links point at smtp.link_base_url (else the listen address), like every
// other link Abacus sends.
func (a *App) Portal() *portal.Service {
	p := &a.mods.portal
	p.once.Do(func() {
		base := a.Config.SMTP.LinkBaseURL
		if base == "" {
			base = "http://" + a.Addr()
		}
		m := a.modules()
		p.svc = portal.NewService(a.DB, a.Clock, a.Log.With("module", "portal"), portal.Config{BaseURL: base},
			m.catalog, m.subs, m.billing)
		p.svc.SetOrgBilling(a.orgBilling)
		p.svc.SetPayLinks(a.payLink)
	})
	return p.svc
}

// orgBilling answers the portal which customer an end user may open: the
// one billed for the organization, when the user is its owner or billing
// admin.
func (a *App) orgBilling(ctx context.Context, userID, orgID string) (string, error) {
	ms, err := a.Organizations().Mine(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.ID != orgID {
			continue
		}
		if m.Role != org.RoleOwner && m.Role != org.RoleBillingAdmin {
			return "", abacus.Errorf(abacus.KindForbidden, "organization_role_required",
				"only the organization's owner or billing admin may open its billing portal")
		}
		return m.CustomerID, nil
	}
	return "", abacus.NotFound("organization", orgID)
}
