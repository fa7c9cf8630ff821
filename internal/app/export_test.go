package app

import (
	"time"

	"github.com/abacusbilling/abacus/internal/billing"
)

// MeteredUsage is a new metering adapter of a's usage service, as the
// catalog (entitlements) and billing read usage through, for tests of its
// rules.
func (a *App) MeteredUsage() interface {
	billing.UsageSource
	billing.BulkUsage
} {
	return newMeteredUsage(a.modules().usage, 250*time.Millisecond)
}
