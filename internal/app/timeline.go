package app

import (
	"context"

	"github.com/abacusbilling/abacus/internal/service"
	"github.com/abacusbilling/abacus/internal/timeline"
)

// timelineService is a customer's timeline; it holds no state beyond the
// database, so the api role (routes) and the timeline role (the consumer)
// each build their own.
func (a *App) timelineService() *timeline.Service {
	return timeline.NewService(a.DB, a.Bus, a.Log.With("module", "timeline"))
}

// registerTimeline adds the timeline's routes (api role).
func registerTimeline(a *App) { timeline.RegisterRoutes(a.HTTP, a.timelineService()) }

// timelineRole keeps the index of domain events by customer (durable
// consumer timeline).
func timelineRole() Role {
	return Role{
		Name: "timeline",
		Doc:  "customers' timelines: domain events indexed by the customer they name (durable consumer timeline)",
		Build: func(_ context.Context, a *App) (service.Service, error) {
			return service.NewFunc("timeline", a.timelineService().Run), nil
		},
	}
}
