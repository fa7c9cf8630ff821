package app

import (
	"fmt"

	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

// newIdentity builds the identity service from the configuration: the
// mailer (SMTP, or none: mail stays in the outbox), where e-mailed links
// go, the trusted proxies that name the client's address and who may sign
// up. Password hashing uses the production parameters.
func newIdentity(a *App) (*identity.Service, error) {
	opts := []identity.Option{}
	if a.Config.SMTP.URL != "" {
		m, err := identity.NewSMTPMailer(a.Config.SMTP.URL)
		if err != nil {
			return nil, fmt.Errorf("%w (smtp.url)", err)
		}
		opts = append(opts, identity.WithMailer(m, a.Config.SMTP.From))
	}
	base := a.Config.SMTP.LinkBaseURL
	if base == "" {
		base = "http://" + a.Addr()
	}
	opts = append(opts, identity.WithLinkBaseURL(base), identity.WithAppURL(a.Config.Identity.AppURL))
	ip, err := httpapi.NewClientIP(a.Config.HTTP.TrustedProxies, a.Config.HTTP.ClientIPHeader)
	if err != nil {
		return nil, fmt.Errorf("%w (http.trusted_proxies, http.client_ip_header)", err)
	}
	opts = append(opts, identity.WithClientIP(ip), identity.WithSignupMode(identity.SignupMode(a.Config.Identity.Signup)))
	return identity.NewService(a.DB, a.Clock, a.Log.With("component", "identity"), opts...), nil
}
