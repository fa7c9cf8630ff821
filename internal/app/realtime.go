package app

import (
	"sync"

	"github.com/abacusbilling/abacus/internal/realtime"
)

// rt is the realtime service of the process, built once.
type rt struct {
	once sync.Once
	svc  *realtime.Service
}

// realtime returns the messaging service: conversations in the database,
// the WebSocket gateway of this node, delivery across nodes through the
// bus. End users connect with their access token through the same
// authenticator as the HTTP edge.
func (a *App) realtime() *realtime.Service {
	r := &a.mods.rt
	r.once.Do(func() {
		c := a.Config.Realtime
		r.svc = realtime.New(a.DB, a.Clock, a.Log.With("module", "realtime"), a.Bus.Conn(), realtime.Config{
			Node: c.Node, MaxFrameBytes: c.MaxFrameBytes, SendQueue: c.SendQueue, RatePerSecond: float64(c.RatePerSecond),
			RateBurst: c.RateBurst, PingInterval: c.PingInterval, MemberLimit: c.MemberLimit, OfflineDelay: c.OfflineDelay,
		})
		r.svc.SetAuthenticator(a.authenticate)
	})
	return r.svc
}
