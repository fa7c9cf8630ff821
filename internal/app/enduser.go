package app

import (
	"context"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications"
)

// EndUsers returns the process's end-user service (the tenants' own users,
// their apps, sessions and tokens), built on first use. Its issuer base
// and e-mailed links use smtp.link_base_url (else the listen address);
// its mail is recorded through the notifications module in the
// transaction of the change that sends it.
func (a *App) EndUsers() *enduser.Service {
	m := &a.mods
	m.euOnce.Do(func() {
		base := a.Config.SMTP.LinkBaseURL
		if base == "" {
			base = "http://" + a.Addr()
		}
		opts := []enduser.Option{enduser.WithBaseURL(base), enduser.WithMailer(enduser.MailerFunc(a.mailEndUser)),
			enduser.WithAuditor(a.Identity.Audit)}
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

// mailEndUser hands an end user's mail to the notifications module, which
// renders the tenant's template (or the built-in one) and sends it once
// the transaction commits. The recipient is an address: the end user may
// not be verified yet, and credential mails go by e-mail only.
func (a *App) mailEndUser(ctx context.Context, tx *db.Tx, m enduser.Mail) error {
	_, err := a.modules().notify.Enqueue(ctx, tx, notifications.Message{
		TenantID: m.TenantID, Template: m.Template, Locale: m.Locale, Data: m.Data,
		To: notifications.Recipient{Kind: notifications.RecipientEmail, Email: m.To, Name: m.Name},
	})
	return err
}
