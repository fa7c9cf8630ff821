package analytics

import (
	"context"

	"github.com/abacusbilling/abacus/internal/payments"
)

// Balances answers a customer's balance (payments.Service).
type Balances interface {
	Balance(ctx context.Context, customerID string) (payments.CustomerBalance, error)
}

// Aging answers the accounts-receivable aging report (payments.Service).
type Aging interface {
	AgingReport(ctx context.Context) (payments.Aging, error)
}
