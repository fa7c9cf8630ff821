package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity"
)

// keysRotate manages the access-token signing keys in the database.
// `keys rotate` adds a key that signs from now on; the old keys stay
// published in the JWKS until the tokens they signed have expired. Running
// servers pick the new key up within a minute.
func keysRotate(ctx context.Context, e Env, args []string) error {
	cfg, rest, err := load("keys rotate [flags]", e, args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; keys rotate takes only flags", rest)
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
