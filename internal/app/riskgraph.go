package app

import (
	"context"

	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/casework"
)

// riskCasework builds the risk module's casework (link graph, labels,
// lists, review cases, score) and plugs it into svc; it must run before
// svc.Start, whose rebuild replays the stored events into the graph.
func (a *App) riskCasework(ctx context.Context, svc *risk.Service) (*casework.Service, error) {
	cw := casework.New(a.DB, a.Clock, a.Log.With("module", "risk", "part", "casework"), svc, casework.Config{})
	cw.Attach(svc)
	if err := cw.Start(ctx); err != nil {
		return nil, err
	}
	casework.RegisterRoutes(a.HTTP, cw)
	return cw, nil
}
