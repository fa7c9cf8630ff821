package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/period"
)

// Thresholds are the shares of a limit (in percent) whose crossing emits
// one entitlement.threshold_reached event per period.
var Thresholds = []int64{80, 100}

// Entitlement answers "may this customer use this feature, and how much
// is left?". Limit and Remaining are null when unlimited; Used, Limit and
// the period are set for metered features. Limit and the period may point
// into cached state: read an Entitlement, never write through it.
type Entitlement struct {
	Feature        string              `json:"feature"`
	Kind           catalog.FeatureKind `json:"kind"`
	HasAccess      bool                `json:"has_access"`
	Reason         string              `json:"reason,omitempty" enum:"payment_overdue,payment_disputed" doc:"why has_access is false although a subscription grants the feature: its payment is overdue (suspended after dunning) or disputed"`
	Value          json.RawMessage     `json:"value,omitempty"`
	Limit          *decimal.Decimal    `json:"limit"`
	Used           *decimal.Decimal    `json:"used,omitempty"`
	Remaining      *decimal.Decimal    `json:"remaining"`
	Enforcement    catalog.Enforcement `json:"enforcement,omitempty"`
	SubscriptionID string              `json:"subscription_id,omitempty"`
	PeriodStart    *time.Time          `json:"period_start,omitempty"`
	PeriodEnd      *time.Time          `json:"period_end,omitempty"`
}

// customerState is what an entitlement check needs about a customer,
// cached briefly so the hot path reads no tables: subjects, subscriptions
// that are not ended, their versions, and the tenant's features.
type customerState struct {
	loaded   time.Time
	subjects []string
	subs     []*liveSub
	features map[string]catalog.Feature
	terms    map[termsKey]*meteredTerms // of every metered grant of subs
	// answers memoises the encoded answer of each check: per grant
	// {subscription, feature} of subs and, for features no live
	// subscription grants, per {"", feature}.
	answers map[termsKey]*answerMemo

	id         string // the customer's id, whichever name the check used
	externalID string

	// suspendable says which features a suspension closes; loaded only
	// when one of subs is suspended (nil: none is).
	suspendable *Suspendable
}

// Suspendable is a tenant's choice of the features a suspended
// subscription closes: every feature when All, else those in Features.
type Suspendable struct {
	All      bool
	Features map[string]bool
}

// Closes reports whether a suspension closes feature.
func (p *Suspendable) Closes(feature string) bool { return p == nil || p.All || p.Features[feature] }

// SuspendableFunc returns a tenant's Suspendable (the payments module keeps
// it with its dunning settings).
type SuspendableFunc func(ctx context.Context, tenant string) (Suspendable, error)

// UseSuspendable sets where the features a suspension closes are read
// from; without it a suspension closes every feature. Call it before the
// service is used.
func (s *Service) UseSuspendable(f SuspendableFunc) { s.suspendable = f }

// closed reports whether feature is closed for ls at now by a suspension.
func (st *customerState) closed(ls *liveSub, feature string, now time.Time) bool {
	return ls.sub.suspendedAt(now) && st.suspendable.Closes(feature)
}

// suspendedAnswer is the entitlement of a feature a suspension closes.
func suspendedAnswer(f catalog.Feature, ls *liveSub) Entitlement {
	reason := ls.sub.SuspendReason
	if reason == "" {
		reason = ReasonPaymentOverdue
	}
	return Entitlement{Feature: f.Key, Kind: f.Kind, SubscriptionID: ls.sub.ID, Reason: reason}
}

// answerMemo holds the last encoded answer of one check. A metered answer
// stays valid while the period and the usage are the ones it was built
// from; any other answer is fixed for as long as the state is cached.
type answerMemo struct{ last atomic.Pointer[encodedAnswer] }

type encodedAnswer struct {
	period *period.Period // metered: the period the answer was built for
	used   decimal.Decimal
	body   []byte
}

type liveSub struct {
	sub Subscription
	ver catalog.Version

	period atomic.Pointer[period.Period] // the last period computed, reused while it contains now
}

// periodAt returns sub.PeriodAt(now), computing it only when now has left
// the period computed last: checks run far more often than periods end.
func (ls *liveSub) periodAt(now time.Time) *period.Period {
	if p := ls.period.Load(); p != nil && !now.Before(p.Start) && now.Before(p.End) {
		return p
	}
	p := ls.sub.PeriodAt(now)
	ls.period.Store(&p)
	return &p
}

type termsKey struct{ subscription, feature string }

// meteredTerms are the parts of a metered grant that stay fixed while the
// customer state is cached, worked out once instead of on every check.
type meteredTerms struct {
	limit       *decimal.Decimal // nil: unlimited
	enforcement catalog.Enforcement
	marks       []decimal.Decimal // marks[i]: the usage at which Thresholds[i] is reached
}

func newMeteredTerms(f catalog.Feature, grant catalog.Grant) *meteredTerms {
	t := &meteredTerms{limit: f.Limit, enforcement: f.Enforcement}
	if grant.Enforcement != "" {
		t.enforcement = grant.Enforcement
	}
	if grant.Limit != nil {
		t.limit = grant.Limit
	}
	if grant.Unlimited {
		t.limit = nil
	}
	if t.limit != nil && t.limit.IsPositive() {
		for _, th := range Thresholds {
			mark := t.limit.Mul(decimal.NewFromInt(th)).Shift(-2) // exact: limit·th/100
			if whole := mark.Truncate(0); whole.Equal(mark) {
				mark = whole // same exponent as whole usage: comparing allocates nothing
			}
			t.marks = append(t.marks, mark)
		}
	}
	return t
}

// stateCache holds customer states for ttl. Local changes invalidate at
// once; changes made on another node show within ttl plus one load: an
// expired state is served while one background load replaces it, so the
// checks of a busy customer never wait on the database together.
type stateCache struct {
	ttl        time.Duration
	mu         sync.RWMutex
	m          map[[2]string]*customerState
	refreshing sync.Map // [2]string → struct{}: a background load is running
	gen        uint64   // bumped by invalidate, under mu: a load that saw another gen is not kept

	// aliases maps {tenant, external id} → customer id, under mu; lookup
	// checks it against the state's externalID.
	aliases map[[2]string]string

	emittedMu sync.RWMutex
	emitted   map[thresholdKey]struct{} // thresholds known to be recorded
}

type thresholdKey struct {
	tenant, subscription, feature string
	periodStart                   int64 // unix micros
	threshold                     int64
}

const maxCached = 100_000

func newStateCache(ttl time.Duration) *stateCache {
	return &stateCache{ttl: ttl, m: map[[2]string]*customerState{}, aliases: map[[2]string]string{}, emitted: map[thresholdKey]struct{}{}}
}

// lookup is get for a customer named by id or external id: an external id
// seen before leads to the state of the customer it named, as long as
// that state still carries it, so checks by external id read no table.
func (c *stateCache) lookup(tenant, ref string, now time.Time) (st *customerState, fresh bool) {
	if st, fresh = c.get(tenant, ref, now); st != nil {
		return st, fresh
	}
	c.mu.RLock()
	id, ok := c.aliases[[2]string{tenant, ref}]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if st, fresh = c.get(tenant, id, now); st == nil || st.externalID != ref {
		return nil, false // not cached, or the external id has moved on
	}
	return st, fresh
}

// alias remembers that external id ref names customer id.
func (c *stateCache) alias(tenant, ref, id string) {
	c.mu.Lock()
	if len(c.aliases) >= maxCached {
		c.aliases = map[[2]string]string{} // bounded like m
	}
	c.aliases[[2]string{tenant, ref}] = id
	c.mu.Unlock()
}

// get returns the cached state and whether it is still fresh. A state
// older than twice the ttl (or from the future) is not returned at all.
func (c *stateCache) get(tenant, customer string, now time.Time) (st *customerState, fresh bool) {
	c.mu.RLock()
	st = c.m[[2]string{tenant, customer}]
	c.mu.RUnlock()
	if st == nil || now.Sub(st.loaded) > 2*c.ttl || now.Before(st.loaded) {
		return nil, false
	}
	return st, now.Sub(st.loaded) <= c.ttl
}

func (c *stateCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches st unless a change invalidated states since its load began
// (gen is generation() from before the load): it may predate the change.
func (c *stateCache) put(tenant, customer string, st *customerState, gen uint64) {
	c.mu.Lock()
	if gen != c.gen {
		c.mu.Unlock()
		return
	}
	if len(c.m) >= maxCached {
		c.m = map[[2]string]*customerState{} // crude but bounded; states rebuild in one query
	}
	c.m[[2]string{tenant, customer}] = st
	c.mu.Unlock()
}

func (c *stateCache) wasEmitted(k thresholdKey) bool {
	c.emittedMu.RLock()
	_, ok := c.emitted[k]
	c.emittedMu.RUnlock()
	return ok
}

func (c *stateCache) markEmitted(k thresholdKey) {
	c.emittedMu.Lock()
	if len(c.emitted) >= maxCached {
		clear(c.emitted) // bounded; the table still decides, at one query per threshold
	}
	c.emitted[k] = struct{}{}
	c.emittedMu.Unlock()
}

// invalidate drops the state of a customer, or of every customer of the
// tenant when customer is "".
func (c *stateCache) invalidate(tenant, customer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if customer != "" {
		delete(c.m, [2]string{tenant, customer})
		return
	}
	for k := range c.m {
		if k[0] == tenant {
			delete(c.m, k)
		}
	}
}

// state returns the state of the customer ref names (id or external id).
func (s *Service) state(ctx context.Context, tenant, ref string) (*customerState, error) {
	wall := time.Now() // the cache ages in real time, not on the injected clock
	st, fresh := s.cache.lookup(tenant, ref, wall)
	if fresh {
		return st, nil
	}
	if st != nil {
		// Expired but recent: answer from it while one load replaces it.
		key := [2]string{tenant, st.id}
		if _, running := s.cache.refreshing.LoadOrStore(key, struct{}{}); !running {
			go func() {
				defer s.cache.refreshing.Delete(key)
				if _, err := s.loadState(context.WithoutCancel(ctx), tenant, key[1], time.Now()); err != nil {
					s.log.Warn("refreshing entitlement state", "customer_id", key[1], "err", err)
				}
			}()
		}
		return st, nil
	}
	return s.loadState(ctx, tenant, ref, wall)
}

// loadState reads the state of the customer ref names from the database
// and caches it.
func (s *Service) loadState(ctx context.Context, tenant, ref string, wall time.Time) (*customerState, error) {
	gen := s.cache.generation()
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, ref)
	if err != nil {
		return nil, err
	}
	st := &customerState{loaded: wall, id: cus.ID, externalID: cus.ExternalID, subjects: cus.Subjects,
		terms: map[termsKey]*meteredTerms{}, answers: map[termsKey]*answerMemo{}}
	rows, err := s.db.QueryContext(ctx, `SELECT `+subCols+` FROM subscriptions WHERE tenant_id = $1 AND customer_id = $2 AND status <> 'ended' ORDER BY id`,
		tenant, cus.ID)
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	var subs []Subscription
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		subs = append(subs, sub)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, sub := range subs {
		v, err := s.cat.LoadVersion(ctx, s.db, tenant, sub.VersionID)
		if err != nil {
			return nil, err
		}
		st.subs = append(st.subs, &liveSub{sub: sub, ver: v})
		if sub.SuspendedAt != nil && st.suspendable == nil {
			p := Suspendable{All: true}
			if s.suspendable != nil {
				if p, err = s.suspendable(ctx, tenant); err != nil {
					return nil, fmt.Errorf("reading the suspendable features: %w", err)
				}
			}
			st.suspendable = &p
		}
	}
	if st.features, err = catalog.FeaturesByKey(ctx, s.db, tenant, nil); err != nil {
		return nil, err
	}
	for _, ls := range st.subs {
		for _, g := range ls.ver.Entitlements {
			k := termsKey{ls.sub.ID, g.Feature}
			f, ok := st.features[g.Feature]
			if !ok || st.answers[k] != nil {
				continue // the first grant of a feature counts, as in Version.Entitlement
			}
			st.answers[k] = &answerMemo{}
			if f.Kind == catalog.FeatureMetered {
				st.terms[k] = newMeteredTerms(f, g)
			}
		}
	}
	for key := range st.features {
		st.answers[termsKey{"", key}] = &answerMemo{}
	}
	s.cache.put(tenant, cus.ID, st, gen)
	if ref != cus.ID {
		s.cache.alias(tenant, ref, cus.ID)
	}
	return st, nil
}

// Check returns the entitlement to feature (a key) now of the customer
// customerID names (its id or external id), and emits threshold events
// for metered features. Errors:
// "customer_not_found", "feature_not_found".
func (s *Service) Check(ctx context.Context, customerID, feature string) (Entitlement, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Entitlement{}, err
	}
	st, err := s.state(ctx, tenant, customerID)
	if err != nil {
		return Entitlement{}, err
	}
	customerID = st.id // when named by external id
	f, ok := st.features[feature]
	if !ok {
		return Entitlement{}, abacus.NotFound("feature", feature)
	}
	return s.check(ctx, tenant, customerID, st, f, s.now())
}

// CheckJSON is Check answered as the JSON the API sends (what
// httpapi.EncodeJSON writes for the Entitlement), for the hot route: the
// encoded answer is memoised with the cached customer state and rebuilt
// only when the usage or the period it was built from changes, so a
// repeated check neither allocates an Entitlement nor encodes one. Usage
// is read, and thresholds are handled, exactly as Check does. The bytes
// are shared: read them, never write to them. Errors as Check.
func (s *Service) CheckJSON(ctx context.Context, customerID, feature string) ([]byte, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.state(ctx, tenant, customerID)
	if err != nil {
		return nil, err
	}
	customerID = st.id // when named by external id
	f, ok := st.features[feature]
	if !ok {
		return nil, abacus.NotFound("feature", feature)
	}
	now := s.now()
	ls, grant := st.grantOf(f.Key, now)
	key := termsKey{feature: f.Key}
	if ls != nil {
		key.subscription = ls.sub.ID
	}
	memo := st.answers[key]
	if ls != nil && ls.sub.SuspendedAt != nil {
		// Rare, and the answer turns when a prepaid access runs out: not
		// memoised.
		e, err := s.check(ctx, tenant, customerID, st, f, now)
		if err != nil {
			return nil, err
		}
		return memoise(nil, &encodedAnswer{}, e)
	}
	if ls == nil || f.Kind != catalog.FeatureMetered {
		if memo != nil && (ls == nil || s.live[f.Key] == nil) {
			if a := memo.last.Load(); a != nil {
				return a.body, nil
			}
		}
		e, err := s.check(ctx, tenant, customerID, st, f, now)
		if err != nil {
			return nil, err
		}
		return memoise(memo, &encodedAnswer{}, e)
	}
	terms := st.terms[key]
	if terms == nil || memo == nil { // not built with the state (cannot happen for a grant of ls)
		e, err := s.metered(ctx, tenant, customerID, st, ls, f, grant, now)
		if err != nil {
			return nil, err
		}
		return httpapi.EncodeJSON(e)
	}
	p := ls.periodAt(now)
	used, err := s.usedIn(ctx, tenant, st, ls, f, p)
	if err != nil {
		return nil, err
	}
	// The same period and usage give the same answer, and its thresholds
	// were handled when it was built (a failure there stores no answer).
	if a := memo.last.Load(); a != nil && a.period == p && a.used.Equal(used) {
		return a.body, nil
	}
	e, err := s.meteredAt(ctx, tenant, customerID, ls.sub, f, terms, p, used)
	if err != nil {
		return nil, err
	}
	return memoise(memo, &encodedAnswer{period: p, used: used}, e)
}

// memoise encodes e into a and stores a in memo (when there is one).
func memoise(memo *answerMemo, a *encodedAnswer, e Entitlement) ([]byte, error) {
	body, err := httpapi.EncodeJSON(e)
	if err != nil {
		return nil, fmt.Errorf("encoding the entitlement to %s: %w", e.Feature, err)
	}
	a.body = body
	if memo != nil {
		memo.last.Store(a)
	}
	return body, nil
}

// grantOf returns the oldest subscription live at now whose version
// grants feature, and the grant; nil when none does.
func (st *customerState) grantOf(feature string, now time.Time) (*liveSub, catalog.Grant) {
	for _, ls := range st.subs {
		if !ls.sub.live(now) {
			continue
		}
		if grant, ok := ls.ver.Entitlement(feature); ok {
			return ls, grant
		}
	}
	return nil, catalog.Grant{}
}

// Entitlements returns the entitlement of the customer customerID names
// (id or external id) to every feature of the tenant, by feature key.
func (s *Service) Entitlements(ctx context.Context, customerID string) ([]Entitlement, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.state(ctx, tenant, customerID)
	if err != nil {
		return nil, err
	}
	customerID = st.id // when named by external id
	keys := make([]string, 0, len(st.features))
	for k := range st.features {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := s.now()
	out := make([]Entitlement, 0, len(keys))
	for _, k := range keys {
		e, err := s.check(ctx, tenant, customerID, st, st.features[k], now)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// check resolves feature f for a customer: the oldest live subscription
// whose version grants it decides.
func (s *Service) check(ctx context.Context, tenant, customerID string, st *customerState, f catalog.Feature, now time.Time) (Entitlement, error) {
	e := Entitlement{Feature: f.Key, Kind: f.Kind}
	ls, grant := st.grantOf(f.Key, now)
	if ls == nil {
		return e, nil
	}
	e.SubscriptionID = ls.sub.ID
	if st.closed(ls, f.Key, now) {
		return suspendedAnswer(f, ls), nil
	}
	switch f.Kind {
	case catalog.FeatureBoolean:
		e.HasAccess = grant.Enabled == nil || *grant.Enabled
	case catalog.FeatureStatic:
		e.HasAccess, e.Value = true, f.Value
		if len(grant.Value) > 0 {
			e.Value = grant.Value
		}
		if err := s.liveUsed(ctx, tenant, customerID, &e); err != nil {
			return Entitlement{}, err
		}
	case catalog.FeatureMetered:
		return s.metered(ctx, tenant, customerID, st, ls, f, grant, now)
	}
	return e, nil
}

func (s *Service) metered(ctx context.Context, tenant, customerID string, st *customerState, ls *liveSub, f catalog.Feature,
	grant catalog.Grant, now time.Time) (Entitlement, error) {
	terms := st.terms[termsKey{ls.sub.ID, f.Key}]
	if terms == nil { // not built with the state (cannot happen for a grant of ls); work them out
		terms = newMeteredTerms(f, grant)
	}
	p := ls.periodAt(now) // shared and never modified: the response points into it
	used, err := s.usedIn(ctx, tenant, st, ls, f, p)
	if err != nil {
		return Entitlement{Feature: f.Key, Kind: f.Kind, SubscriptionID: ls.sub.ID, Enforcement: terms.enforcement}, err
	}
	return s.meteredAt(ctx, tenant, customerID, ls.sub, f, terms, p, used)
}

// sinceUsage is a usage source that can count a span from an instant
// inside a minute exactly (usage is kept per minute; app's metering
// adapter reads that minute from the stored events).
type sinceUsage interface {
	UsageSince(ctx context.Context, tenantID, meterSlug string, subjects []string, start, to time.Time) (decimal.Decimal, error)
}

// usedIn returns the customer's usage of metered feature f in period p of
// ls, from the subscription's start instant when it began within p:
// usage from before the start is not the subscription's.
func (s *Service) usedIn(ctx context.Context, tenant string, st *customerState, ls *liveSub, f catalog.Feature, p *period.Period) (decimal.Decimal, error) {
	var used decimal.Decimal
	var err error
	if since, ok := s.usage.(sinceUsage); ok && !ls.sub.StartedAt.Before(p.Start) {
		used, err = since.UsageSince(ctx, tenant, f.MeterSlug, st.subjects, ls.sub.StartedAt, p.End)
	} else {
		used, err = s.usage.Usage(ctx, tenant, f.MeterSlug, st.subjects, maxTime(p.Start, ls.sub.StartedAt), p.End)
	}
	if err != nil {
		return decimal.Zero, fmt.Errorf("reading usage of %s: %w", f.MeterSlug, err)
	}
	return used, nil
}

// meteredAt is the entitlement to metered feature f with used in period
// p, after emitting the thresholds used has reached.
func (s *Service) meteredAt(ctx context.Context, tenant, customerID string, sub Subscription, f catalog.Feature,
	terms *meteredTerms, p *period.Period, used decimal.Decimal) (Entitlement, error) {
	e := Entitlement{Feature: f.Key, Kind: f.Kind, SubscriptionID: sub.ID, Enforcement: terms.enforcement}
	limit := terms.limit
	e.Used, e.Limit, e.PeriodStart, e.PeriodEnd = &used, limit, &p.Start, &p.End
	e.HasAccess = true
	if limit != nil {
		rem := limit.Sub(used)
		if rem.IsNegative() {
			rem = decimal.Zero
		}
		e.Remaining = &rem
		if !used.LessThan(*limit) && e.Enforcement != catalog.Soft {
			e.HasAccess = false
		}
		for i, mark := range terms.marks {
			if used.GreaterThanOrEqual(mark) {
				if err := s.reachThreshold(ctx, tenant, customerID, sub, f.Key, p.Start, p.End, Thresholds[i], used, *limit); err != nil {
					return e, err
				}
			}
		}
	}
	return e, nil
}

// reachThreshold records that threshold th of feature was crossed in the
// period starting at periodStart and emits entitlement.threshold_reached,
// exactly once: the table's primary key decides between racing checks and
// nodes; the in-memory set keeps repeat checks off the database.
func (s *Service) reachThreshold(ctx context.Context, tenant, customerID string, sub Subscription, feature string,
	periodStart, periodEnd time.Time, th int64, used, limit decimal.Decimal) error {
	key := thresholdKey{tenant, sub.ID, feature, periodStart.UnixMicro(), th}
	if s.cache.wasEmitted(key) {
		return nil
	}
	now := s.now()
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO entitlement_thresholds (tenant_id, subscription_id, feature_key, period_start, threshold, used, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			tenant, sub.ID, feature, db.TimeOf(periodStart), th, used.String(), db.TimeOf(now))
		if err != nil {
			return fmt.Errorf("recording threshold: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // already recorded: no second event
		}
		_, err = EntitlementThresholdReached.Record(ctx, tx, tenant, sub.ID, now, ThresholdReached{
			CustomerID: customerID, SubscriptionID: sub.ID, Feature: feature, Threshold: th,
			Limit: limit, Used: used, PeriodStart: periodStart, PeriodEnd: periodEnd})
		return err
	})
	if err != nil {
		return err
	}
	s.cache.markEmitted(key)
	return nil
}

// evaluateAll checks the metered entitlements of every live subscription
// so thresholds are reached even when the tenant's app does not ask. A
// subscription that fails is logged and left to the next run.
func (s *Service) evaluateAll(ctx context.Context, now time.Time) error {
	cursor := ""
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT id, tenant_id, customer_id FROM subscriptions WHERE status <> 'ended' AND id > $1 ORDER BY id LIMIT 500`, cursor)
		if err != nil {
			return fmt.Errorf("listing live subscriptions: %w", err)
		}
		type ref struct{ id, tenant, customer string }
		var refs []ref
		for rows.Next() {
			var r ref
			if err := rows.Scan(&r.id, &r.tenant, &r.customer); err != nil {
				rows.Close()
				return err
			}
			refs = append(refs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range refs {
			if err := s.evaluate(ctx, r.tenant, r.customer, r.id, now); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// One customer's bad data must not stop the others' (nor
				// billing, which advances subscriptions first).
				s.log.Error("evaluating usage thresholds failed; tried again on the next run", "tenant", r.tenant, "subscription", r.id, "err", err)
			}
		}
		if len(refs) < 500 {
			return nil
		}
		cursor = refs[len(refs)-1].id
	}
}

// evaluate checks the usage thresholds of the metered features of
// subscription id of customer, if it is live at now.
func (s *Service) evaluate(ctx context.Context, tenant, customer, id string, now time.Time) error {
	st, err := s.state(ctx, tenant, customer)
	if err != nil {
		return err
	}
	for _, ls := range st.subs {
		if ls.sub.ID != id || !ls.sub.live(now) {
			continue
		}
		for _, g := range ls.ver.Entitlements {
			f, ok := st.features[g.Feature]
			if !ok || f.Kind != catalog.FeatureMetered {
				continue
			}
			if _, err := s.metered(ctx, tenant, customer, st, ls, f, g, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// OnInvalidate adds f to what is told, after a change made in this
// process committed, that the change dropped the cached state of customer
// of tenant (every customer of the tenant when customer is ""). The app
// publishes it on NATS so that other processes Forget theirs at once
// instead of serving it until it expires. Call it before the service is
// used; f must not block.
func (s *Service) OnInvalidate(f func(tenant, customer string)) {
	s.onInvalidate = append(s.onInvalidate, f)
}

// invalidate drops the cached state of customer of tenant (every customer
// of the tenant when customer is "") and tells the OnInvalidate hooks.
func (s *Service) invalidate(tenant, customer string) {
	s.cache.invalidate(tenant, customer)
	for _, f := range s.onInvalidate {
		f(tenant, customer)
	}
}

// Forget drops the cached state of customer of tenant (every customer of
// the tenant when customer is ""), changed by another process: the next
// check reads it again. The hooks of OnInvalidate are not told.
func (s *Service) Forget(tenant, customer string) { s.cache.invalidate(tenant, customer) }

// SetStateTTL sets how long a customer's state is cached (2 s by default;
// an expired state is served for as long again while one load replaces
// it). Tests use a long one to prove that an invalidation, not expiry,
// dropped a state. Call it before the service is used.
func (s *Service) SetStateTTL(d time.Duration) { s.cache.ttl = d }
