package app

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// applyStaticMeters creates or updates the meters of metering.meters in
// their tenant (metering.meters_tenant, else the bootstrap tenant), and
// releases configured meters no longer listed. It is idempotent: a start
// with an unchanged file changes nothing.
func (a *App) applyStaticMeters(ctx context.Context) error {
	m := a.Config.Metering
	tenant := m.MetersTenant
	if tenant == "" {
		var err error
		if tenant, err = usage.DefaultTenant(ctx, a.DB); err != nil {
			return fmt.Errorf("static meters (metering.meters): %w", err)
		}
	}
	res, err := a.modules().usage.ApplyStaticMeters(ctx, tenant, m.Meters)
	if err != nil {
		return fmt.Errorf("static meters (metering.meters, tenant %s; metering.meters_tenant): %w", tenant, err)
	}
	if len(res.Created)+len(res.Updated)+len(res.Released) > 0 {
		a.Log.Info("static meters applied", "tenant_id", tenant, "created", res.Created, "updated", res.Updated,
			"released", res.Released, "unchanged", len(res.Unchanged))
	}
	return nil
}
