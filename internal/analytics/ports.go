package analytics

import (
	"context"

	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Balances answers a customer's balance (payments.Service).
type Balances interface {
	Balance(ctx context.Context, customerID string) (payments.CustomerBalance, error)
}

// Aging answers the accounts-receivable aging report (payments.Service).
type Aging interface {
	AgingReport(ctx context.Context) (payments.Aging, error)
}

// Entitlements answers a customer's entitlements with their usage in the
// current period (subscription.Service).
type Entitlements interface {
	Entitlements(ctx context.Context, customerID string) ([]subscription.Entitlement, error)
}

// Devices counts the devices a customer's end users have connected (the
// members of the organization billed as the customer): active sessions,
// and live real-time connections (the app wires end users and realtime).
type Devices interface {
	CustomerDevices(ctx context.Context, customerID string) (CustomerDevices, error)
}

// CustomerDevices answers "how many devices has customer X connected".
type CustomerDevices struct {
	Sessions    int `json:"sessions" doc:"active end-user sessions (signed-in devices) of the customer's organization members"`
	Connections int `json:"connections" doc:"their live real-time connections, on every node (0 without the realtime role in this process)"`
	Total       int `json:"total" doc:"sessions + connections: what the max_devices feature counts"`
}
