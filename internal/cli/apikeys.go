package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
)

func openDB(ctx context.Context, cfg config.Config) (*db.DB, error) {
	if cfg.Database.URL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("cannot create data dir %s (data_dir): %w", cfg.DataDir, err)
		}
	}
	return db.Open(ctx, db.Options{URL: cfg.Database.URL, SQLitePath: cfg.SQLitePath(), MaxConns: 2})
}

// apikeys manages keys directly in the database, for operators with
// access to it (the HTTP API needs a key to begin with).
func apikeys(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("name a subcommand: apikeys create|list|revoke")
	}
	sub, args := args[0], args[1:]
	var tenant, name, scopes string
	var expiresIn time.Duration
	cfg, rest, err := load("apikeys "+sub, e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&tenant, "tenant", "", "tenant id (default: the only tenant)")
		if sub == "create" {
			fs.StringVar(&name, "name", "", "what the key is for (required)")
			fs.StringVar(&scopes, "scopes", "read", "comma list of ingest, read, write, admin")
			fs.DurationVar(&expiresIn, "expires-in", 0, "lifetime such as 720h (default: no expiry)")
		}
	})
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
	if tenant == "" {
		if tenant, err = onlyTenant(ctx, d); err != nil {
			return err
		}
	}
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "operator", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	switch sub {
	case "create":
		in := identity.NewKeyInput{Name: name}
		for _, s := range strings.Split(scopes, ",") {
			in.Scopes = append(in.Scopes, abacus.Scope(strings.TrimSpace(s)))
		}
		if expiresIn > 0 {
			t := time.Now().Add(expiresIn).UTC()
			in.ExpiresAt = &t
		}
		k, plaintext, err := svc.CreateAPIKey(ctx, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stderr, "created %s (%s) with scopes %v; the key is shown only once:\n", k.ID, k.Name, k.Scopes)
		fmt.Fprintln(e.Stdout, plaintext)
	case "list":
		keys, err := svc.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tCREATED\tSTATUS")
		for _, k := range keys {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked"
			} else if k.ExpiresAt != nil && time.Now().After(*k.ExpiresAt) {
				status = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.Scopes, k.CreatedAt.Format(time.RFC3339), status)
		}
		return tw.Flush()
	case "revoke":
		if len(rest) != 1 {
			return fmt.Errorf("usage: abacus apikeys revoke [flags] KEY_ID")
		}
		k, err := svc.RevokeAPIKey(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "revoked %s (%s)\n", k.ID, k.Name)
	default:
		return fmt.Errorf("unknown subcommand %q: use create, list or revoke", sub)
	}
	return nil
}

func onlyTenant(ctx context.Context, d *db.DB) (string, error) {
	ids, err := identity.TenantIDs(ctx, d, 2)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("there is no tenant yet; run `abacus serve` once to create the default tenant")
	case 1:
		return ids[0], nil
	default:
		return "", fmt.Errorf("there are several tenants; name one with --tenant")
	}
}
