// Package catalogtest holds test doubles for the catalog's seams; only
// tests import it, so production code cannot come to rely on a fake.
package catalogtest

import (
	"context"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// MemoryUsage is an in-memory catalog.UsageSource for tests: meters are
// declared with AddMeter and usage recorded with Record, one event a call.
type MemoryUsage struct {
	mu     sync.Mutex
	meters map[string]bool // tenant/slug
	events []memEvent
}

type memEvent struct {
	tenant, meter, subject string
	at                     time.Time
	qty                    decimal.Decimal
}

var _ catalog.UsageSource = (*MemoryUsage)(nil)

// NewMemoryUsage returns an empty MemoryUsage.
func NewMemoryUsage() *MemoryUsage { return &MemoryUsage{meters: map[string]bool{}} }

// AddMeter declares meter slug for tenant.
func (m *MemoryUsage) AddMeter(tenant, slug string) {
	m.mu.Lock()
	m.meters[tenant+"/"+slug] = true
	m.mu.Unlock()
}

// Record adds one event of meter for subject at time at, worth qty.
func (m *MemoryUsage) Record(tenant, meter, subject string, at time.Time, qty decimal.Decimal) {
	m.mu.Lock()
	m.events = append(m.events, memEvent{tenant, meter, subject, at, qty})
	m.mu.Unlock()
}

// Usage sums the recorded quantities of meter for subjects in [from, to).
func (m *MemoryUsage) Usage(ctx context.Context, tenant, meter string, subjects []string, from, to time.Time) (decimal.Decimal, error) {
	u, err := m.UsageWithEvents(ctx, tenant, meter, subjects, from, to)
	return u.Quantity, err
}

// UsageWithEvents sums the recorded quantities of meter for subjects in
// [from, to) and counts the events (Record calls) behind them, as
// billing reads usage.
func (m *MemoryUsage) UsageWithEvents(_ context.Context, tenant, meter string, subjects []string, from, to time.Time) (pricing.Usage, error) {
	want := map[string]bool{}
	for _, s := range subjects {
		want[s] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := pricing.Usage{Quantity: decimal.Zero}
	for _, e := range m.events {
		if e.tenant == tenant && e.meter == meter && want[e.subject] && !e.at.Before(from) && e.at.Before(to) {
			u = u.Add(pricing.Usage{Quantity: e.qty, Events: 1})
		}
	}
	return u, nil
}

// MeterExists reports whether AddMeter declared the meter.
func (m *MemoryUsage) MeterExists(_ context.Context, tenant, slug string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meters[tenant+"/"+slug], nil
}
