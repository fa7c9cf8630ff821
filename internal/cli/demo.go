package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/demo"
)

// demoCmd seeds a running server through its public API.
func demoCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlags("demo [flags]")
	url := fs.String("url", envOr(e, "ABACUS_URL", "http://127.0.0.1:8080"), "base URL of a running Abacus (env ABACUS_URL)")
	key := fs.String("api-key", envOr(e, "ABACUS_API_KEY", ""), "admin API key (env ABACUS_API_KEY)")
	days := fs.Int("usage-days", 0, fmt.Sprintf("days of usage to send, 1 to %d (default: the two months since the backdated subscriptions started); "+
		"the tenant's late-event window is raised to cover them", demo.MaxUsageDays))
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	if *days < 0 || *days > demo.MaxUsageDays {
		return fmt.Errorf("--usage-days must be between 1 and %d (or 0 for the default, two months), got %d", demo.MaxUsageDays, *days)
	}
	if *key == "" {
		return errors.New("name an admin API key with --api-key or ABACUS_API_KEY (abacus serve prints one on first start)")
	}
	start := time.Now()
	sum, err := demo.Run(ctx, client.New(*url, *key, nil), demo.Options{UsageDays: *days, Out: e.Stdout, Seed: uint64(start.UnixNano())})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "demo %s: %d meters, %d plans, %d customers, %d subscriptions, %d events over %d days, %d finalized invoices (%d with first-period usage) in %s\n",
		sum.Tag, sum.Meters, sum.Plans, sum.Customers, sum.Subscriptions, sum.Events, sum.UsageDays, sum.Invoices, sum.UsageInvoices, time.Since(start).Round(time.Millisecond))
	return nil
}
