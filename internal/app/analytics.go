package app

import (
	"context"
	"sync"

	"github.com/abacusbilling/abacus/internal/analytics"
	"github.com/abacusbilling/abacus/internal/service"
)

// analyticsMod is the analytics service of the process, shared by the api
// role (routes) and the analytics role (the projection).
type analyticsMod struct {
	once sync.Once
	svc  *analytics.Service
	err  error
}

// Analytics returns the process's analytics service, built on first use.
func (a *App) Analytics() (*analytics.Service, error) {
	m := &a.mods.analytics
	m.once.Do(func() {
		pays, err := a.payments()
		if err != nil {
			m.err = err
			return
		}
		m.svc = analytics.NewService(a.DB, a.modules().catalog, a.Clock, a.Log.With("module", "analytics"),
			analytics.Ports{Balances: pays, Aging: pays})
	})
	return m.svc, m.err
}

// registerAnalytics adds the analytics routes (api role).
func registerAnalytics(a *App) error {
	svc, err := a.Analytics()
	if err != nil {
		return err
	}
	analytics.RegisterRoutes(a.HTTP, svc)
	return nil
}

// analyticsRole is the projection: the durable consumer that journals
// domain events and folds them into the figures.
func analyticsRole() Role {
	return Role{
		Name: "analytics",
		Doc:  "analytics projection: domain events into MRR, movements, churn, retention and revenue figures (durable consumer analytics)",
		Build: func(_ context.Context, a *App) (service.Service, error) {
			svc, err := a.Analytics()
			if err != nil {
				return nil, err
			}
			bus := a.Bus
			return service.NewFunc("analytics", func(ctx context.Context) error { return svc.Run(ctx, bus) }), nil
		},
	}
}
