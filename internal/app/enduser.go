package app

import (
	"context"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// EndUsers returns the process's end-user service (the tenants' own users,
// their apps, sessions and tokens), built on first use. Its issuer base
// and e-mailed links use smtp.link_base_url (else the listen address);
// mail to end users is dropped until a Mailer is set (SetMailer).
func (a *App) EndUsers() *enduser.Service {
	m := &a.mods
	m.euOnce.Do(func() {
		base := a.Config.SMTP.LinkBaseURL
		if base == "" {
			base = "http://" + a.Addr()
		}
		opts := []enduser.Option{enduser.WithBaseURL(base)}
		// Validated by identity's wiring at start; a bad value never gets here.
		if ip, err := httpapi.NewClientIP(a.Config.HTTP.TrustedProxies, a.Config.HTTP.ClientIPHeader); err == nil {
			opts = append(opts, enduser.WithClientIP(ip))
		}
		m.endusers = enduser.NewService(a.DB, a.Clock, a.Log.With("component", "enduser"), opts...)
	})
	return m.endusers
}

// authenticate sends an end user's access token to the OIDC provider
// (which checks it with the end-user service) and every other credential
// to identity.
func (a *App) authenticate(ctx context.Context, cred string) (*abacus.Principal, error) {
	return a.OIDC().Authenticate(a.Identity.Authenticate)(ctx, cred)
}
