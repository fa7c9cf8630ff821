package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/analytics"
)

// analyticsRebuild recomputes the analytics figures from their journal,
// directly on the database, beside a running server (the projection's
// batches wait for it): `abacus analytics rebuild [--tenant ID|NAME]`;
// every tenant without --tenant.
func analyticsRebuild(ctx context.Context, e Env, args []string) error {
	var tenant string
	cfg, rest, err := load("analytics rebuild [flags]", e, args, func(fs *flag.FlagSet) {
		tenantFlag(fs, &tenant)
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("analytics rebuild takes no arguments: abacus analytics rebuild [--tenant ID|NAME]")
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	if tenant != "" {
		if tenant, err = resolveTenant(ctx, d, tenant); err != nil {
			return err
		}
	}
	svc := analytics.NewService(d, nil, abacus.SystemClock{}, newLogger(cfg, e.Stderr), analytics.Ports{})
	res, err := svc.Rebuild(ctx, tenant)
	if err != nil {
		return err
	}
	who := "every tenant"
	if tenant != "" {
		who = "tenant " + tenant
	}
	fmt.Fprintf(e.Stdout, "rebuilt the analytics of %s from %d journaled events in %d ms\n", who, res.Events, res.DurationMS)
	return nil
}
