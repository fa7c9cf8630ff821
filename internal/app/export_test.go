package app

import (
	"time"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/risk/casework"
)

// RiskUsage is the usage source the risk module's anomaly check reads
// (daily usage and the customer owning a subject).
func (a *App) RiskUsage() casework.UsageSource { return riskUsage{a: a, usage: a.modules().usage} }

// MeteredUsage is a new metering adapter of a's usage service, as the
// catalog (entitlements) and billing read usage through, for tests of its
// rules.
func (a *App) MeteredUsage() interface {
	catalog.UsageSource
	billing.UsageSource
	billing.BulkUsage
} {
	return newMeteredUsage(a.modules().usage, 250*time.Millisecond)
}

// Dunning is the process's dunning service (the dunning role's), for
// tests that drive its passes on a fake clock.
func (a *App) Dunning() *dunning.Service { return a.modules().dunning }

// Billing is the process's billing service, for tests that bill on a
// fake clock.
func (a *App) Billing() *billing.Service { return a.modules().billing }
