package app

import (
	"context"

	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp"
)

// newNotifications builds the notifications service every role of the
// process shares: its channels (e-mail here; in-app and push register
// beside it), its policy and its directory of recipients. Without
// smtp.url e-mail is the development inbox: mails are kept, not sent.
func newNotifications(a *App) *notifications.Service {
	svc := notifications.New(a.DB, a.Clock, a.Log.With("module", "notifications"),
		notifications.Config{KeepBodies: a.Config.SMTP.URL == ""})
	var sender notifications.Sender
	if a.Config.SMTP.URL != "" {
		s, err := smtp.New(a.Config.SMTP.URL, smtp.Options{})
		if err != nil {
			// config.Validate refuses such a URL; should one get here, mail
			// waits (and says why) rather than pretend to be sent.
			sender = failing{err}
		} else {
			sender = s
		}
	}
	svc.RegisterChannel(notifications.NewEmail(svc, sender, a.Config.SMTP.From))
	return svc
}

// failing is a Sender that cannot send.
type failing struct{ err error }

func (f failing) Send(context.Context, notifications.Mail) error { return f.err }
