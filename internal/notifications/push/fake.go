package push

import (
	"context"
	"sync"
)

// Fake is a Provider for tests and development standing in for FCM or
// APNs (which need vendor credentials): it records every push it is
// given and answers ErrGone for the device tokens marked Gone. Use it as
// push.SetProvider(push.ProviderFCM, &push.Fake{}).
type Fake struct {
	mu   sync.Mutex
	sent []Push
	gone map[string]bool
}

// Send implements Provider.
func (f *Fake) Send(_ context.Context, p Push) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[p.Device.Endpoint] {
		return ErrGone
	}
	f.sent = append(f.sent, p)
	return nil
}

// Gone makes later sends to token answer ErrGone (the app was removed).
func (f *Fake) Gone(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone == nil {
		f.gone = map[string]bool{}
	}
	f.gone[token] = true
}

// Sent returns what was pushed so far.
func (f *Fake) Sent() []Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Push(nil), f.sent...)
}
