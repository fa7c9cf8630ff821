package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity"
)

// keys manages the access-token signing keys in the database. `keys
// rotate` adds a key that signs from now on; the old keys stay published
// in the JWKS until the tokens they signed have expired. Running servers
// pick the new key up within a minute.
func keys(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("name a subcommand: keys rotate")
	}
	cfg, _, err := load("keys rotate", e, args[1:], nil)
	if err != nil {
		return err
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	svc := identity.NewService(d, abacus.SystemClock{}, newLogger(cfg, e.Stderr))
	kept, err := svc.RotateKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range kept {
		status := "signing"
		if k.RetireAfter != nil {
			status = "retiring after " + k.RetireAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(e.Stdout, "%s\tcreated %s\t%s\n", k.ID, k.CreatedAt.Format(time.RFC3339), status)
	}
	return nil
}
