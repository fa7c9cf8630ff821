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

// apikeysCmd is `abacus apikeys <sub>`. It manages keys directly in the
// database, for operators with access to it (the HTTP API needs a key to
// begin with).
func apikeysCmd(sub string) func(ctx context.Context, e Env, args []string) error {
	return func(ctx context.Context, e Env, args []string) error { return apikeys(ctx, e, sub, args) }
}

func apikeys(ctx context.Context, e Env, sub string, args []string) error {
	use := "apikeys " + sub + " [flags]"
	if sub == "revoke" {
		use += " KEY_ID"
	}
	var tenant, name, scopes string
	var expiresIn time.Duration
	cfg, rest, err := load(use, e, args, func(fs *flag.FlagSet) {
		tenantFlag(fs, &tenant)
		if sub == "create" {
			fs.StringVar(&name, "name", "", "what the key is for (required)")
			fs.StringVar(&scopes, "scopes", "read", "comma list of ingest, read, write, admin")
			fs.DurationVar(&expiresIn, "expires-in", 0, "lifetime such as 720h (default: no expiry)")
		}
	})
	if err != nil {
		return err
	}
	if sub == "revoke" && len(rest) != 1 {
		return fmt.Errorf("usage: abacus %s", use)
	}
	if sub != "revoke" && len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; usage: abacus %s", rest, use)
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
	if tenant, err = resolveTenant(ctx, d, tenant); err != nil {
		return err
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

// tenantFlag adds --tenant to a command that acts on one tenant.
func tenantFlag(fs *flag.FlagSet, tenant *string) {
	fs.StringVar(tenant, "tenant", "", "tenant id (ten_…) or exact name (default: the only tenant; required when there are several)")
}

// resolveTenant returns the id of the tenant named by the --tenant value
// (an id or an exact name), or of the only tenant when the value is empty.
// Several tenants and no value, an unknown tenant and a name several
// tenants share are errors that list the candidates.
func resolveTenant(ctx context.Context, d *db.DB, tenant string) (string, error) {
	const limit = 20 // candidates named in an error
	var (
		ts  []identity.TenantRef
		err error
	)
	if tenant == "" {
		ts, err = identity.FindTenants(ctx, d, "", limit+1)
	} else {
		ts, err = identity.FindTenants(ctx, d, tenant, limit+1)
	}
	if err != nil {
		return "", err
	}
	switch {
	case len(ts) == 1:
		return ts[0].ID, nil
	case tenant == "" && len(ts) == 0:
		return "", fmt.Errorf("there is no tenant yet; run `abacus serve` once to create the default tenant")
	case tenant == "":
		return "", fmt.Errorf("there are several tenants; name one with --tenant ID or --tenant NAME: %s", listTenants(ts, limit))
	case len(ts) == 0:
		all, err := identity.FindTenants(ctx, d, "", limit+1)
		if err != nil {
			return "", err
		}
		return "", fmt.Errorf("no tenant has the id or name %q; the tenants are: %s", tenant, listTenants(all, limit))
	default:
		return "", fmt.Errorf("several tenants are named %q; name one by its id: %s", tenant, listTenants(ts, limit))
	}
}

// listTenants is "ten_1 (Acme), ten_2 (Default)", cut after limit.
func listTenants(ts []identity.TenantRef, limit int) string {
	var parts []string
	for i, t := range ts {
		if i == limit {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", t.ID, t.Name))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
