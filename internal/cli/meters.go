package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/metering"
	meterusage "github.com/abacusbilling/abacus/internal/metering/usage"
)

// meters runs meter maintenance directly on the database, beside a
// running server: `abacus meters rebuild SLUG` recomputes a meter's
// rollups from stored events (meter workers wait for it and then drop
// their caches, so nothing is counted twice).
func meters(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return fmt.Errorf("name a subcommand: meters rebuild SLUG")
	}
	var tenant string
	cfg, rest, err := load("meters rebuild", e, args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&tenant, "tenant", "", "tenant id (default: the only tenant)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("name one meter: abacus meters rebuild [--tenant ID] SLUG")
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	if tenant == "" {
		if tenant, err = onlyTenant(ctx, d); err != nil {
			return err
		}
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
