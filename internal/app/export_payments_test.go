package app

import "github.com/abacusbilling/abacus/internal/payments"

// Payments exposes the payments service to the tests (a gateway fake is
// registered on it).
func (a *App) Payments() (*payments.Service, error) { return a.payments() }
