package app

import (
	"github.com/abacusbilling/abacus/internal/notifications"
)

// newNotifications builds the notifications service every role of the
// process shares: its channels (e-mail here; in-app and push register
// beside it), its policy and its directory of recipients. Without
// smtp.url e-mail is the development inbox: mails are kept, not sent.
func newNotifications(a *App) *notifications.Service {
	svc := notifications.New(a.DB, a.Clock, a.Log.With("module", "notifications"),
		notifications.Config{KeepBodies: a.Config.SMTP.URL == ""})
	svc.RegisterChannel(notifications.NewEmail(svc, nil, a.Config.SMTP.From))
	return svc
}
