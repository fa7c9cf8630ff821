package subscription

import (
	"context"

	"github.com/shopspring/decimal"
)

// LiveUsage tells how much of a static feature a customer uses right now,
// for features whose use another module keeps (max_devices: the devices
// an organization's members have signed in, kept by enduser/org).
type LiveUsage func(ctx context.Context, tenant, customerID string) (decimal.Decimal, error)

// UseLiveUsage makes entitlement checks of the static feature report
// used = f(customer) while a subscription grants it; such answers are
// not memoised. Call it before the service is used.
func (s *Service) UseLiveUsage(feature string, f LiveUsage) {
	if s.live == nil {
		s.live = map[string]LiveUsage{}
	}
	s.live[feature] = f
}

type skipLiveKey struct{}

// WithoutLiveUsage marks ctx so that Check leaves Used of live features
// out: for the module that keeps the usage and asks only for the grant
// (max_devices on the sign-in path counts devices itself).
func WithoutLiveUsage(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipLiveKey{}, true)
}

// liveUsed fills e.Used from the feature's LiveUsage, when it has one.
func (s *Service) liveUsed(ctx context.Context, tenant, customerID string, e *Entitlement) error {
	f := s.live[e.Feature]
	if f == nil || ctx.Value(skipLiveKey{}) != nil {
		return nil
	}
	used, err := f(ctx, tenant, customerID)
	if err != nil {
		return err
	}
	e.Used = &used
	return nil
}
