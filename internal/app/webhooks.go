package app

import (
	"sync"

	"github.com/abacusbilling/abacus/internal/seal"
	"github.com/abacusbilling/abacus/internal/webhooks"
)

// hooks is the webhooks service the api and webhooks roles share.
type hooks struct {
	once sync.Once
	svc  *webhooks.Service
	err  error
}

func (a *App) webhooks() (*webhooks.Service, error) {
	h := &a.mods.hooks
	h.once.Do(func() {
		c := a.Config.Webhooks
		key, err := seal.LoadOrCreateKey(c.EncryptionKey, a.Config.DataDir, "webhooks.key", "webhooks.encryption_key")
		if err != nil {
			h.err = err
			return
		}
		h.svc, h.err = webhooks.NewService(a.DB, a.Clock, a.Log.With("module", "webhooks"), webhooks.Config{
			AllowPrivateTargets: c.AllowPrivateTargets, EncryptionKey: key, Workers: c.Workers,
			EndpointConcurrency: c.EndpointConcurrency, Timeout: c.Timeout,
		}, a.Metrics)
	})
	return h.svc, h.err
}
