package app

import (
	"sync"

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
	})
	return p.svc
}
