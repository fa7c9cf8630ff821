package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/singleflight"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/oidc"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// modules are the domain services the roles of one process share, built
// once on first use, so every role sees the same caches.
type modules struct {
	once    sync.Once
	usage   *usage.Service
	catalog *catalog.Service
	subs    *subscription.Service
	billing *billing.Service
	notify  *notifications.Service
	dunning *dunning.Service // dunning.go

	euOnce   sync.Once // end users are needed by the HTTP edge of every role
	endusers *enduser.Service

	oidcOnce sync.Once
	oidc     *oidc.Provider
	orgOnce  sync.Once
	orgs     *org.Service
	inbox    *inbox
	hooks    hooks     // built apart: building it can fail (webhooks.go)
	risk     riskMod   // risk.go
	portal   portalMod // portal.go
	pay      pay       // likewise (payments.go)
	rt       rt        // realtime.go

	analytics analyticsMod // analytics.go
}

func (a *App) modules() *modules {
	m := &a.mods
	m.once.Do(func() {
		m.usage = usage.NewService(a.DB, a.Clock, a.Log, metering.Limits{LateWindow: a.Config.Metering.LateWindow})
		metered := newMeteredUsage(m.usage, 250*time.Millisecond)
		m.catalog = catalog.NewService(a.DB, a.Clock, a.Log, metered)
		m.subs = subscription.NewService(m.catalog, a.Clock, a.Log)
		m.subs.OnEnd(billing.CycleEnds)
		m.subs.OnSave(billing.CycleSaves)
		cacheInvalidation(a.Bus.Conn(), m.subs, a.Log) // access.go
		m.billing = billing.NewService(a.DB, a.Clock, a.Log, billing.Config{PollInterval: a.Config.Billing.PollInterval}, billing.NewSubscriptionsAdvancing(m.catalog, m.subs), metered)
		m.notify = newNotifications(a, m)
		m.dunning = newDunning(a, m)
		m.inbox = newInbox(a, m.notify)
	})
	return m
}

// meteredUsage answers the catalog's usage questions (entitlements) from
// metering's rollups. Each answer is cached for ttl: entitlement checks run
// on every request of a tenant's app, and a quarter second adds little to
// the pipeline's own ingest-to-queryable delay. For up to stale past its
// ttl an answer is still served while one background query replaces it,
// so a busy key's checks never wait on the database together; an answer
// is never older than ttl + stale plus one query (well inside a second).
type meteredUsage struct {
	svc        *usage.Service
	ttl, stale time.Duration

	mu    sync.RWMutex
	cache map[usageKey]cachedUsage
	// flight makes concurrent misses of one key share a single query, so
	// an expiring entry under load costs one query, not one per request.
	flight singleflight.Group
}

type usageKey struct {
	tenant, meter, subjects string
	from, to                int64
}

type cachedUsage struct {
	v     decimal.Decimal
	until time.Time
}

func newMeteredUsage(svc *usage.Service, ttl time.Duration) *meteredUsage {
	return &meteredUsage{svc: svc, ttl: ttl, stale: ttl, cache: map[usageKey]cachedUsage{}}
}

func tenantCtx(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeRead}})
}

// minutes returns the span of whole minutes that stands for [from, to):
// usage is kept per minute, and a minute counts where it ends. The usage
// API rounds a query outward, as OpenMeter does, which would count a
// minute cut by a period boundary in both periods; rounding both ends down
// gives every minute to exactly one of two adjacent spans, wherever the
// boundary falls.
func minutes(from, to time.Time) (time.Time, time.Time, bool) {
	from, to = from.Truncate(time.Minute), to.Truncate(time.Minute)
	return from, to, from.Before(to)
}

// spanOf is minutes, or for a span counted from the instant from on
// (exact: the start of a subscription) to rounded down and from kept.
func spanOf(from, to time.Time, exact bool) (time.Time, time.Time, bool) {
	if !exact {
		return minutes(from, to)
	}
	to = to.Truncate(time.Minute)
	return from, to, from.Before(to)
}

// Usage returns the meter's value over [from, to), to the minute (see
// minutes), summed across subjects.
func (m *meteredUsage) Usage(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (decimal.Decimal, error) {
	return m.usage(ctx, tenantID, meterSlug, subjects, from, to, false)
}

// UsageSince is Usage counted from the instant start on, not from the
// start of its minute: usage belongs to a subscription from its start.
// The minute start cuts is read from the stored events.
func (m *meteredUsage) UsageSince(ctx context.Context, tenantID, meterSlug string, subjects []string, start, to time.Time) (decimal.Decimal, error) {
	return m.usage(ctx, tenantID, meterSlug, subjects, start, to, true)
}

func (m *meteredUsage) usage(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time, exact bool) (decimal.Decimal, error) {
	from, to, some := spanOf(from, to, exact)
	if len(subjects) == 0 || !some {
		return decimal.Zero, nil
	}
	subj := subjects[0]
	if len(subjects) > 1 {
		subj = strings.Join(subjects, "\x00")
	}
	key := usageKey{tenant: tenantID, meter: meterSlug, subjects: subj, from: from.UnixMicro(), to: to.UnixMicro()}
	m.mu.RLock()
	c, ok := m.cache[key]
	m.mu.RUnlock()
	now := time.Now()
	if ok && now.Before(c.until) {
		return c.v, nil
	}
	refresh := ok && now.Before(c.until.Add(m.stale))
	// Copies the query points to, declared here so that only a miss moves
	// them to the heap, not every hit.
	qFrom, qTo := from, to
	flightKey := fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%d", key.tenant, key.meter, key.subjects, key.from, key.to)
	if refresh {
		// Serve the recent answer; the query runs without the request's
		// deadline, which ends with this response.
		ctx = context.WithoutCancel(ctx)
	}
	load := func() (any, error) {
		res, _, err := m.svc.Query(tenantCtx(ctx, tenantID), meterSlug, usage.QueryParams{From: &qFrom, To: &qTo, Subject: subjects, ExactFrom: exact})
		if err != nil {
			return nil, err
		}
		total := decimal.Zero
		for _, w := range res.Data {
			total = total.Add(w.Value)
		}
		m.mu.Lock()
		if len(m.cache) > 100_000 {
			clear(m.cache) // bounded; refilled by the next checks
		}
		m.cache[key] = cachedUsage{v: total, until: time.Now().Add(m.ttl)}
		m.mu.Unlock()
		return total, nil
	}
	if refresh {
		m.flight.DoChan(flightKey, load) // the result lands in the cache
		return c.v, nil
	}
	v, err, _ := m.flight.Do(flightKey, load)
	if err != nil {
		return decimal.Zero, err
	}
	return v.(decimal.Decimal), nil
}

// UsageBySubject returns the meter's value over [from, to), to the minute
// (see minutes), per subject, with the number of events behind it (for
// per-event fees), in one query: the billing worker asks once per meter
// and period for a whole batch of subscriptions. Not cached: invoices read
// exact values.
func (m *meteredUsage) UsageBySubject(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (map[string]pricing.Usage, error) {
	return m.bySubject(ctx, tenantID, meterSlug, subjects, from, to, false)
}

// UsageBySubjectSince is UsageBySubject counted from the instant start on
// (see UsageSince): billing reads a subscription's first span with it.
func (m *meteredUsage) UsageBySubjectSince(ctx context.Context, tenantID, meterSlug string, subjects []string, start, to time.Time) (map[string]pricing.Usage, error) {
	return m.bySubject(ctx, tenantID, meterSlug, subjects, start, to, true)
}

func (m *meteredUsage) bySubject(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time, exact bool) (map[string]pricing.Usage, error) {
	out := make(map[string]pricing.Usage, len(subjects))
	from, to, some := spanOf(from, to, exact)
	if len(subjects) == 0 || !some {
		return out, nil
	}
	res, _, err := m.svc.Query(tenantCtx(ctx, tenantID), meterSlug, usage.QueryParams{From: &from, To: &to, Subject: subjects, ExactFrom: exact})
	if err != nil {
		return nil, err
	}
	for _, w := range res.Data {
		if w.Subject != nil {
			out[*w.Subject] = out[*w.Subject].Add(pricing.Usage{Quantity: w.Value, Events: w.Events})
		}
	}
	return out, nil
}

// UsageWithEvents is UsageBySubject summed across subjects: billing's read
// of a source without bulk reads (this one has them).
func (m *meteredUsage) UsageWithEvents(ctx context.Context, tenantID, meterSlug string, subjects []string, from, to time.Time) (pricing.Usage, error) {
	by, err := m.UsageBySubject(ctx, tenantID, meterSlug, subjects, from, to)
	if err != nil {
		return pricing.Usage{}, err
	}
	total := pricing.Usage{Quantity: decimal.Zero}
	for _, u := range by {
		total = total.Add(u)
	}
	return total, nil
}

// MeterExists reports whether the tenant has a meter with this slug.
func (m *meteredUsage) MeterExists(ctx context.Context, tenantID, slug string) (bool, error) {
	_, err := m.svc.GetMeter(tenantCtx(ctx, tenantID), slug)
	if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
		return false, nil
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return false, err
	}
	return err == nil, err
}
