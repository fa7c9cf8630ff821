package app

import "github.com/abacusbilling/abacus/internal/enduser/oidc"

// OIDC returns the process's OpenID Connect provider of end users (one
// issuer per tenant under /oidc/), built on first use.
func (a *App) OIDC() *oidc.Provider {
	m := &a.mods
	m.oidcOnce.Do(func() {
		m.oidc = oidc.New(a.EndUsers(), a.DB, a.Clock, a.Log.With("component", "oidc"))
	})
	return m.oidc
}
