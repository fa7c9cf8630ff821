package app

import (
	"context"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/analytics"
	"github.com/abacusbilling/abacus/internal/risk/casework"
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
		mods := a.modules()
		m.svc = analytics.NewService(a.DB, mods.catalog, a.Clock, a.Log.With("module", "analytics"),
			analytics.Ports{Balances: pays, Aging: pays, Usage: mods.usage, Owners: mods.catalog, Entitlements: mods.subs,
				Devices: orgDevices{a}, Spikes: riskSpikes{a}})
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

// orgDevices answers analytics' devices question from the organization
// billed as the customer: its members' sessions and live connections.
type orgDevices struct{ a *App }

func (d orgDevices) CustomerDevices(ctx context.Context, customerID string) (analytics.CustomerDevices, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return analytics.CustomerDevices{}, err
	}
	cus, err := d.a.modules().catalog.GetCustomer(ctx, customerID)
	if err != nil {
		return analytics.CustomerDevices{}, err
	}
	sessions, all, err := d.a.Organizations().DeviceCountsOfCustomer(ctx, tenant, cus.ID)
	return analytics.CustomerDevices{Sessions: sessions, Connections: all - sessions, Total: all}, err
}

// riskSpikes answers analytics' usage spikes from the risk module's
// recorded alerts (a read of its table: the risk role need not run here).
type riskSpikes struct{ a *App }

func (r riskSpikes) UsageSpikes(ctx context.Context, meter string, from, to time.Time) ([]analytics.UsageSpike, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	alerts, err := casework.UsageAlerts(ctx, r.a.DB, tenant, meter, from, to)
	out := make([]analytics.UsageSpike, len(alerts))
	for i, al := range alerts {
		out[i] = analytics.UsageSpike{Day: al.Day.Format(time.DateOnly), Subject: al.Subject, Value: al.Value, Baseline: al.Median}
	}
	return out, err
}
