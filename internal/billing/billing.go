// Package billing turns subscriptions and usage into invoices, exactly once
// per billing cycle, and keeps what follows an invoice: credit notes,
// coupons, the prepaid-credit ledger, tax rates and gapless numbering.
//
// An invoice moves one way; anything else is refused with 409
// invalid_invoice_transition and changes nothing:
//
//	 refresh (usage arrives)
//	  ┌──────┐
//	  ▼      │      finalize (by hand, or at cycle end + grace)
//	draft ───┴──────────────────────────────▶ open ──mark paid──▶ paid
//	              number assigned, credits      │
//	              applied, document frozen      ├──void──▶ void
//	                                            └──mark uncollectible──▶ uncollectible ──void / mark paid──▶
//
// Billing cycles. Each subscription's billing starts at its bill-from time
// (the end of its trial, else its start). At every boundary of its schedule
// (computed in the customer's zone) the worker creates one invoice holding
// the in-advance fees of the period that starts there, the in-arrears fees,
// usage and commitment true-up of the period that ends there (priced phase
// by phase on the plan version in force), and the proration lines of
// changes made since the last invoice. The invoice is unique per
// (tenant, subscription, period_start) where period_start is that boundary;
// the cycle cursor and the invoice commit together, so a crash, a restart
// or a second worker (PostgreSQL: FOR UPDATE SKIP LOCKED) never bills a
// boundary twice or skips one. Backdated subscriptions catch up boundary by
// boundary. The invoice stays a draft for the tenant's usage grace period
// (default 1 h) and is refreshed as late usage arrives, then finalizes.
//
// Taxes and rounding. Lines are priced and rounded to the currency by the
// pricing engine, one rounding per line. Coupons become document-level
// allowances per tax group (percentage: rounded per group; fixed: shared
// pro rata, the remainder on the last group). Tax is computed by
// document.ComputeTotals the EN 16931 way: once per tax category and rate
// on the group's taxable amount, rounded half up, so the stored totals and
// every rendered document agree to the cent. Tax-inclusive rates are turned
// into net line amounts first (gross / (1 + rate), rounded per line).
// Credits are applied after tax, as the prepaid amount.
//
// Numbering. Invoice and credit-note numbers (PREFIX-YYYY-NNNNNN) come from
// a counter row per tenant and series updated inside the transaction that
// finalizes, so a number is used exactly when the finalization commits.
//
// Throughput. A batch of cycles is one transaction with a fixed number of
// statements (see batch.go). Pricing and finalizing run in lanes, one
// goroutine per core, each customer in one lane so its coupon uses and
// credits carry over in order; the transaction's goroutine inserts the
// chunks the lanes have finished while they work on the next. PostgreSQL
// gets each table's rows as column arrays (unnest) in one statement.
package billing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// Config tunes the billing worker. Zero fields take the defaults of
// WithDefaults.
type Config struct {
	// Grace is the default usage grace period of tenants without settings.
	Grace time.Duration
	// BatchSize is how many cycles one transaction bills.
	BatchSize int
	// RefreshInterval is how often open drafts are re-priced.
	RefreshInterval time.Duration
	// PollInterval is how often Run calls RunOnce.
	PollInterval time.Duration
	// Workers is how many transactions bill cycles concurrently on
	// PostgreSQL (SQLite always uses one).
	Workers int
}

// WithDefaults returns c with every zero field set.
func (c Config) WithDefaults() Config {
	if c.Grace == 0 {
		c.Grace = time.Hour
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	return c
}

// Validate reports every bad field of c, each named.
func (c Config) Validate() error {
	var v abacus.Validation
	if c.Grace < 0 {
		v.Add("billing.grace", "must not be negative")
	}
	if c.BatchSize < 0 || c.BatchSize > 10000 {
		v.Add("billing.batch_size", "must be between 1 and 10000")
	}
	if c.RefreshInterval < 0 {
		v.Add("billing.refresh_interval", "must not be negative")
	}
	return v.Err("invalid_billing_config")
}

// UsageSource is where billing reads usage (metering implements it):
// UsageWithEvents returns the summed quantity of meter meterSlug for the
// given subjects over [from, to) and the number of events behind it, which
// per-event fees are priced by.
type UsageSource interface {
	UsageWithEvents(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (pricing.Usage, error)
}

// BulkUsage is an optional extension of UsageSource: the usage of one
// meter over [from, to) for many subjects at once, by subject, events
// included. The worker uses it when available so a cycle batch asks once
// per meter and window.
type BulkUsage interface {
	UsageBySubject(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (map[string]pricing.Usage, error)
}

// SinceUsage is an optional extension of BulkUsage: UsageBySubject counted
// from the instant start on, not from the start of its minute (usage is
// kept per minute). The worker reads the span a subscription's billing
// starts with through it: usage from before the start is not billed.
type SinceUsage interface {
	UsageBySubjectSince(ctx context.Context, tenantID, meterSlug string, subjects []string, start, to time.Time) (map[string]pricing.Usage, error)
}

// Service bills subscriptions and manages invoices, credit notes,
// coupons, credits and tax rates of the caller's tenant (read from ctx);
// RunOnce works across tenants.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config
	subs  Subscriptions
	usage UsageSource

	// hookCreated, if set, runs after each invoice is written inside the
	// cycle transaction (the crash test kills the process there).
	hookCreated func()
}

// NewService returns a billing service. subs reads subscriptions (see
// NewSubscriptions); usage may be nil (no usage).
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config, subs Subscriptions, usage UsageSource) *Service {
	if log == nil {
		log = slog.Default()
	}
	if usage == nil {
		usage = catalog.NoUsage{}
	}
	return &Service{db: d, clock: clock, log: log, cfg: cfg.WithDefaults(), subs: subs, usage: usage}
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func tenantCtx(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "billing",
		Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := abacus.AsError(err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Run calls RunOnce at the clock's time every PollInterval until ctx ends
// (the billing role). Errors are logged and retried on the next tick.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		st, err := s.RunOnce(ctx, s.clock.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("billing run failed", "err", err)
		case st.Invoices+st.Finalized+st.Expired > 0:
			s.log.Info("billing run", "invoices", st.Invoices, "finalized", st.Finalized, "refreshed", st.Refreshed, "expired_grants", st.Expired)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
