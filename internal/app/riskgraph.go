package app

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/casework"
)

// riskCasework builds the risk module's casework (link graph, labels,
// lists, review cases, score, usage anomalies) and plugs it into svc; it
// must run before svc.Start, whose rebuild replays the stored events into
// the graph.
func (a *App) riskCasework(ctx context.Context, svc *risk.Service) (*casework.Service, error) {
	cw := casework.New(a.DB, a.Clock, a.Log.With("module", "risk", "part", "casework"), svc,
		casework.Config{Usage: riskUsage{a: a, usage: a.modules().usage}})
	cw.Attach(svc)
	if err := cw.Start(ctx); err != nil {
		return nil, err
	}
	casework.RegisterRoutes(a.HTTP, cw)
	return cw, nil
}

// riskUsage reads daily usage per subject and meter through the metering
// module's query API for the usage anomaly check.
type riskUsage struct {
	a     *App
	usage *usage.Service
}

func (u riskUsage) Tenants(ctx context.Context) ([]string, error) {
	return identity.TenantIDs(ctx, u.a.DB, 100000)
}

// CustomerOf answers the catalog customer owning subject ("" when none
// does), which risk.usage_anomaly names for webhook consumers.
func (u riskUsage) CustomerOf(ctx context.Context, tenant, subject string) (string, error) {
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "risk", Scopes: []abacus.Scope{abacus.ScopeRead}})
	c, err := u.a.modules().catalog.CustomerBySubject(ctx, subject)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return "", nil
	}
	return c.ID, err
}

func (u riskUsage) DailyUsage(ctx context.Context, tenant string, from, to time.Time) ([]casework.UsageSeries, error) {
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "risk", Scopes: []abacus.Scope{abacus.ScopeRead}})
	meters, err := u.usage.ListMeters(ctx)
	if err != nil {
		return nil, err
	}
	days := int(to.Sub(from) / (24 * time.Hour))
	var out []casework.UsageSeries
	for _, m := range meters {
		res, _, err := u.usage.Query(ctx, m.Slug, usage.QueryParams{From: &from, To: &to, WindowSize: metering.WindowDay, GroupBy: []string{"subject"}})
		if err != nil {
			return nil, err
		}
		bySubject := map[string]*casework.UsageSeries{}
		for _, w := range res.Data {
			if w.Subject == nil {
				continue
			}
			s := bySubject[*w.Subject]
			if s == nil {
				s = &casework.UsageSeries{Meter: m.Slug, Subject: *w.Subject, From: from, Values: make([]float64, days)}
				bySubject[*w.Subject] = s
			}
			if i := int(w.WindowStart.Sub(from) / (24 * time.Hour)); i >= 0 && i < days {
				s.Values[i], _ = w.Value.Float64() // a statistic's input, not an amount
			}
		}
		for _, s := range bySubject {
			out = append(out, *s)
		}
	}
	return out, nil
}
