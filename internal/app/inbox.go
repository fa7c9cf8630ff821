package app

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
	"github.com/abacusbilling/abacus/internal/notifications/prefs"
	"github.com/abacusbilling/abacus/internal/notifications/push"
	"github.com/abacusbilling/abacus/internal/seal"
)

// inbox is the person-facing side of notifications every role of the
// process shares: the in-app inbox with its live streams, Web Push and
// recipients' preferences and digests.
type inbox struct {
	box     *inapp.Service
	push    *push.Service // nil when the sealing key is unusable
	prefs   *prefs.Store
	digests *prefs.Digests
}

// newInbox registers the in_app and push channels and the preferences
// policy on n.
func newInbox(a *App, n *notifications.Service) *inbox {
	log := a.Log.With("module", "notifications")
	in := &inbox{
		box:     inapp.New(a.DB, a.Clock, log, a.Bus.Conn(), inapp.Config{}),
		prefs:   prefs.NewStore(a.DB, a.Clock),
		digests: prefs.NewDigests(a.DB, a.Clock, log, n),
	}
	n.RegisterChannel(in.box)
	n.SetPolicy(prefs.NewPolicy(a.DB, a.Clock))
	key, err := seal.LoadOrCreateKey(a.Config.Push.SealKey, a.Config.DataDir, "push-seal.key", "push.seal_key")
	var sealer *push.Sealer
	if err == nil {
		sealer, err = push.NewSealer(key)
	}
	if err != nil {
		// Push deliveries are then dropped with the reason that the channel
		// is not enabled; everything else works.
		log.Error("web push is off: no usable sealing key", "err", err)
		return in
	}
	in.push = push.New(a.DB, a.Clock, log, sealer, push.Config{Subject: a.Config.Push.Subject})
	n.RegisterChannel(in.push)
	return in
}

// registerInbox adds the routes of the inbox, push and preferences.
func registerInbox(a *App) {
	in := a.modules().inbox
	inapp.RegisterRoutes(a.HTTP, in.box)
	if in.push != nil {
		push.RegisterRoutes(a.HTTP, in.push)
	}
	prefs.RegisterRoutes(a.HTTP, in.prefs)
}

// withDigests runs the notifications dispatcher and, beside it, the
// sending of digests whose window has ended.
func withDigests(a *App, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		go func() { _ = a.modules().inbox.digests.Run(ctx, 30*time.Second) }()
		return run(ctx)
	}
}
