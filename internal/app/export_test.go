package app

import (
	"time"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
)

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
