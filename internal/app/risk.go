package app

import (
	"context"
	"path/filepath"
	"sync"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/seal"
	"github.com/abacusbilling/abacus/internal/service"
)

// RiskJournalDir is the risk journal's directory in the data dir (SQLite
// only: internal/risk/journal.go).
const RiskJournalDir = "risk-journal"

// riskMod is the risk service of the process (built by the risk role).
type riskMod struct {
	once sync.Once
	svc  *risk.Service
	err  error
}

// Risk returns the process's risk service, built on first use.
func (a *App) Risk() (*risk.Service, error) {
	r := &a.mods.risk
	r.once.Do(func() {
		key, err := seal.LoadOrCreateKey(a.Config.Risk.HashKey, a.Config.DataDir, "risk.key", "risk.hash_key")
		if err != nil {
			r.err = err
			return
		}
		cfg := risk.Config{HashKey: key}
		if a.Config.Database.URL == "" { // SQLite: this process is its only writer
			cfg.JournalDir = filepath.Join(a.Config.DataDir, RiskJournalDir)
		}
		r.svc, r.err = risk.NewService(a.DB, a.Clock, a.Log.With("module", "risk"), cfg)
		if r.err == nil {
			r.svc.SetCustomers(riskCustomers{a: a})
			r.svc.RegisterMetrics(a.Metrics)
		}
	})
	return r.svc, r.err
}

// riskRole is the risk role: the risk routes, the counters rebuilt from
// the stored events before the routes answer, and the group commit.
func riskRole() Role {
	return Role{
		Name: "risk",
		Doc:  "risk decisions: risk events, rules, velocity counters (rebuilt from stored events at start), decisions",
		Build: func(ctx context.Context, a *App) (service.Service, error) {
			svc, err := a.Risk()
			if err != nil {
				return nil, err
			}
			cw, err := a.riskCasework(ctx, svc) // riskgraph.go: graph, lists, labels, cases, score
			if err != nil {
				return nil, err
			}
			if err := svc.Start(ctx, a.Bus); err != nil {
				cw.Stop()
				return nil, err
			}
			risk.RegisterRoutes(a.HTTP, svc)
			bus := a.Bus
			return service.NewFunc("risk", func(ctx context.Context) error {
				defer cw.Stop()
				defer svc.Stop()
				return svc.RunFeed(ctx, bus)
			}), nil
		},
	}
}

func (r riskCustomers) ExternalIDOf(ctx context.Context, tenant, id string) (string, error) {
	c, err := catalog.LoadCustomer(ctx, r.a.DB, tenant, id)
	if err != nil {
		if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
			return "", nil
		}
		return "", err
	}
	if c.ID != id {
		return "", nil
	}
	return c.ExternalID, nil
}

// riskCustomers links risk events to catalog customers by external id.
type riskCustomers struct{ a *App }

func (r riskCustomers) CustomerByExternalID(ctx context.Context, tenant, ext string) (string, error) {
	return catalog.CustomerIDByExternalID(ctx, r.a.DB, tenant, ext)
}
