package app

import (
	"context"
	"sync"
	"time"

	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/stripe"
	"github.com/abacusbilling/abacus/internal/seal"
)

// pay is the payments service the api and payments roles share.
type pay struct {
	once sync.Once
	svc  *payments.Service
	err  error
}

func (a *App) payments() (*payments.Service, error) {
	p := &a.mods.pay
	p.once.Do(func() {
		key, err := seal.LoadOrCreateKey(a.Config.Payments.EncryptionKey, a.Config.DataDir, "payments.key", "payments.encryption_key")
		if err != nil {
			p.err = err
			return
		}
		base := a.Config.SMTP.LinkBaseURL
		if base == "" {
			base = "http://" + a.Addr()
		}
		p.svc, p.err = payments.NewService(a.DB, a.Clock, a.Log.With("module", "payments"), payments.Config{
			EncryptionKey: key, BaseURL: base,
		}, a.modules().billing)
		if p.err == nil {
			p.svc.RegisterGateway(payments.ProviderStripe, stripe.New)
		}
	})
	return p.svc, p.err
}

// payLink is the portal's way to the hosted pay page of an invoice.
func (a *App) payLink(ctx context.Context, invoiceID string) (string, time.Time, error) {
	svc, err := a.payments()
	if err != nil {
		return "", time.Time{}, err
	}
	l, err := svc.CreatePayLink(ctx, invoiceID)
	return l.URL, l.ExpiresAt, err
}
