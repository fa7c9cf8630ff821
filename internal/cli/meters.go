package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/metering"
	meterusage "github.com/abacusbilling/abacus/internal/metering/usage"
)

// metersRebuild runs meter maintenance directly on the database, beside a
// running server: `abacus meters rebuild SLUG` recomputes a meter's
// rollups from stored events (meter workers wait for it and then drop
// their caches, so nothing is counted twice).
func metersRebuild(ctx context.Context, e Env, args []string) error {
	var tenant string
	cfg, rest, err := load("meters rebuild [flags] SLUG", e, args, func(fs *flag.FlagSet) {
		tenantFlag(fs, &tenant)
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("name one meter: abacus meters rebuild [--tenant ID|NAME] SLUG")
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	if tenant, err = resolveTenant(ctx, d, tenant); err != nil {
		return err
	}
	svc := meterusage.NewService(d, abacus.SystemClock{}, newLogger(cfg, e.Stderr), metering.Limits{LateWindow: cfg.Metering.LateWindow})
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "cli", ID: "cli", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	res, err := svc.Rebuild(pctx, rest[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "rebuilt meter %s (%s) from %d stored events\n", res.Meter.Slug, res.Meter.ID, res.Events)
	return nil
}
