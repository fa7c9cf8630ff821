// Package catalog holds what a product team configures: customers (with
// the usage subjects that map events to them), features, and plans whose
// versions carry prices, entitlements and a trial.
//
// A plan version moves one way:
//
//	draft ──publish──▶ published ──archive──▶ archived
//	  │ (editable)        (immutable: edits → 409 version_immutable)
//	  └──────────────archive──────────────────▶ archived
//
// New subscriptions take a plan's latest published version; existing
// subscriptions keep theirs until they are changed. Usage charges and
// metered features name meters by slug; a UsageSource says which meters
// exist (metering owns them).
package catalog

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"time"

	_ "time/tzdata" // customer time zones must resolve on hosts without zoneinfo

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// UsageSource answers usage questions; metering implements it. Usage
// returns the summed quantity of meter meterSlug for the given subjects
// over [from, to). MeterExists reports whether the tenant has the meter.
type UsageSource interface {
	Usage(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (decimal.Decimal, error)
	MeterExists(ctx context.Context, tenantID, slug string) (bool, error)
}

// Service manages customers, features, plans and plan versions of the
// caller's tenant (every method reads the tenant from ctx).
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	usage UsageSource

	// published versions never change, so they are cached forever by id.
	versions sync.Map // version id → *Version

	listenMu  sync.Mutex
	listeners []func(tenantID, customerID string)
	guards    []CurrencyGuard // see GuardCurrency
}

// NewService returns a catalog service. usage may be nil: every meter
// slug is then accepted (until metering is wired in) and usage is zero.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, usage UsageSource) *Service {
	if usage == nil {
		usage = NoUsage{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, clock: clock, log: log, usage: usage}
}

// DB returns the service's database handle.
func (s *Service) DB() *db.DB { return s.db }

// Usage returns the service's usage source.
func (s *Service) Usage() UsageSource { return s.usage }

// OnChange registers f, called after a customer or feature of a tenant
// changes (customerID is "" when every customer may be affected). The
// entitlement cache uses it to drop stale entries.
func (s *Service) OnChange(f func(tenantID, customerID string)) {
	s.listenMu.Lock()
	s.listeners = append(s.listeners, f)
	s.listenMu.Unlock()
}

func (s *Service) changed(tenantID, customerID string) {
	s.listenMu.Lock()
	ls := s.listeners
	s.listenMu.Unlock()
	for _, f := range ls {
		f(tenantID, customerID)
	}
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// NoUsage is a UsageSource that knows every meter and reports no usage:
// the stand-in until metering is wired in.
type NoUsage struct{}

// Usage returns zero.
func (NoUsage) Usage(context.Context, string, string, []string, time.Time, time.Time) (decimal.Decimal, error) {
	return decimal.Zero, nil
}

// UsageWithEvents returns zero usage (billing's read, see
// billing.UsageSource).
func (NoUsage) UsageWithEvents(context.Context, string, string, []string, time.Time, time.Time) (pricing.Usage, error) {
	return pricing.Usage{}, nil
}

// MeterExists returns true.
func (NoUsage) MeterExists(context.Context, string, string) (bool, error) { return true, nil }

var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,62}$`)

// validSlug reports whether s is a key such as "hd_streaming".
func validSlug(s string) bool { return slugRe.MatchString(s) }

// Page bounds a list: at most Limit items (default 20, at most 100) with
// ids after Cursor.
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 20
	case p.Limit > 100:
		return 100
	}
	return p.Limit
}

// List is one page of items and the cursor of the next ("" at the end):
// the API's one list type.
type List[T any] = abacus.List[T]

// page cuts items fetched with limit+1 into a List.
func page[T any](items []T, limit int, id func(T) string) List[T] {
	out := List[T]{Data: items}
	if out.Data == nil {
		out.Data = []T{}
	}
	if len(items) > limit {
		out.Data = items[:limit]
		out.NextCursor = id(items[limit-1])
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
