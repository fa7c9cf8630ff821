package cli

import (
	"context"
	"fmt"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/heapfloor"
)

func serve(ctx context.Context, e Env, args []string) error {
	cfg, rest, err := load("serve [flags]", e, args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; serve takes only flags", rest)
	}
	if _, err := app.SelectRoles(cfg.Roles); err != nil {
		return fmt.Errorf("%w (roles)", err)
	}
	defer heapfloor.Start(int64(cfg.GC.HeapFloorMB) << 20)()
	a := app.New(cfg, app.Options{Version: Version, Log: newLogger(cfg, e.Stderr), Out: e.Stdout})
	return a.Run(ctx)
}

func migrate(ctx context.Context, e Env, args []string) error {
	cfg, rest, err := load("migrate [flags]", e, args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; migrate takes only flags", rest)
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	applied, err := d.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migration failed and was rolled back: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.Stdout, "database is up to date")
	}
	for _, n := range applied {
		fmt.Fprintln(e.Stdout, "applied", n)
	}
	return nil
}
