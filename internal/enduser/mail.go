package enduser

import (
	"context"

	"github.com/abacusbilling/abacus/internal/db"
)

// Mail templates the service sends. Data always has "user" {name, email},
// "app" {name}, "tenant" {name} and "expires_at" (RFC 3339) when the
// message carries something that expires; "link" when there is one and
// "code" when there is a one-time code.
const (
	MailVerifyEmail   = "end_user.verify_email"
	MailResetPassword = "end_user.reset_password"
	MailMagicLink     = "end_user.magic_link"
	MailNewDevice     = "end_user.new_device"
)

// Mail is one message to an end user, rendered by the Mailer from the
// tenant's template for Template in Locale (or the default).
type Mail struct {
	TenantID string
	To       string
	Name     string
	Locale   string
	Template string
	Data     map[string]any
}

// Mailer delivers mail to end users. Send runs in the transaction of the
// change the mail announces (a sign-up, a reset request), so an
// implementation should queue the message in tx and deliver after commit;
// an error rolls the change back.
type Mailer interface {
	Send(ctx context.Context, tx *db.Tx, m Mail) error
}

// MailerFunc adapts a function to Mailer.
type MailerFunc func(ctx context.Context, tx *db.Tx, m Mail) error

// Send calls f.
func (f MailerFunc) Send(ctx context.Context, tx *db.Tx, m Mail) error { return f(ctx, tx, m) }

// send hands m to the mailer, or logs (without Data, which holds secrets)
// that there is none.
func (s *Service) send(ctx context.Context, tx *db.Tx, m Mail) error {
	if s.opt.mailer == nil {
		s.log.WarnContext(ctx, "no mailer configured; end-user mail dropped", "tenant_id", m.TenantID, "template", m.Template)
		return nil
	}
	return s.opt.mailer.Send(ctx, tx, m)
}
