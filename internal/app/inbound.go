package app

import (
	"path/filepath"
	"sync"

	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/inbound"
)

// received is the inbound documents service, built on first use: its
// object store is a directory under the data directory ("objects").
type received struct {
	once sync.Once
	svc  *inbound.Service
	err  error
}

func (a *App) inbound() (*inbound.Service, error) {
	r := &a.received
	r.once.Do(func() {
		store, err := blob.NewDir(filepath.Join(a.Config.DataDir, "objects"))
		if err != nil {
			r.err = err
			return
		}
		r.svc = inbound.NewService(a.DB, store, a.Clock, a.Log.With("module", "inbound"))
	})
	return r.svc, r.err
}

// registerInbound adds the received documents' routes to the API.
func registerInbound(a *App) error {
	svc, err := a.inbound()
	if err != nil {
		return err
	}
	inbound.RegisterRoutes(a.HTTP, svc)
	return nil
}
