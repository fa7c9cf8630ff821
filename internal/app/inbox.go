package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
	"github.com/abacusbilling/abacus/internal/notifications/prefs"
	"github.com/abacusbilling/abacus/internal/notifications/push"
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
	seal, err := pushSealer(a.Config.Push.SealKey, a.Config.DataDir)
	if err != nil {
		// Push deliveries are then dropped with the reason that the channel
		// is not enabled; everything else works.
		log.Error("web push is off: no usable sealing key", "err", err)
		return in
	}
	in.push = push.New(a.DB, a.Clock, log, seal, push.Config{Subject: a.Config.Push.Subject})
	n.RegisterChannel(in.push)
	return in
}

// pushSealer returns the sealer of push.seal_key, else of the key file in
// the data directory (made on first use).
func pushSealer(configured, dataDir string) (*push.Sealer, error) {
	if configured != "" {
		key, err := base64.StdEncoding.DecodeString(configured)
		if err != nil {
			return nil, fmt.Errorf("push.seal_key: %w", err)
		}
		return push.NewSealer(key)
	}
	path := filepath.Join(dataDir, "push-seal.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		b = []byte(base64.StdEncoding.EncodeToString(key))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return push.NewSealer(key)
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
