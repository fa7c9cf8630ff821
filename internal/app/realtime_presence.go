package app

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/realtime"
	"github.com/abacusbilling/abacus/internal/realtime/moderation"
	"github.com/abacusbilling/abacus/internal/realtime/presence"
	"github.com/abacusbilling/abacus/internal/realtime/rtmetrics"
)

// userSendRate is the messages a second one user may send from all their
// connections on a node (twice that at once).
const userSendRate = 50

// presenceFrame tells a user's contacts that the user came online or went
// offline (docs/realtime.md, Presence).
type presenceFrame struct {
	Type   string `json:"type"` // "presence"
	UserID string `json:"user_id"`
	Status string `json:"status"` // online, offline
}

// realtimeParts wires issue 16's part B into the gateway: presence across
// nodes (frames to the user's contacts, the staff routes, live
// connections counted by max_devices) and the per-node metrics. It runs
// in the realtime role, before the first connection; the returned stop
// ends presence (other nodes then take this node's users offline).
func (a *App) realtimeParts(svc *realtime.Service, used *messageUsage) (stop func(), err error) {
	m := rtmetrics.New(a.Metrics, svc.Node())
	log := a.Log.With("module", "realtime", "component", "presence")
	announce := func(tenant, user string, online bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		contacts, err := svc.Contacts(ctx, tenant, user)
		if err != nil {
			log.Warn("presence: reading contacts", "tenant_id", tenant, "err", err)
			return
		}
		// Every contact, not only those this node knows online: a node
		// that joined a moment ago may not know them yet, and a publish to
		// a user with no connection anywhere costs NATS one lookup.
		to := contacts
		status := "offline"
		if online {
			status = "online"
		}
		if len(to) > 0 {
			svc.PublishToUsers(tenant, to, "", presenceFrame{Type: "presence", UserID: user, Status: status})
		}
	}
	// The presence id is unique per start (the node's name may repeat: two
	// apps in one test process, a restart on the same host and pid).
	tr, err := presence.New(a.Bus.Conn(), presence.Config{Node: svc.Node() + "/" + abacus.NewID("rtn"), OnChange: announce}, log)
	if err != nil {
		return nil, err
	}
	if err := tr.ServeConnections(presence.LocalConnections(svc)); err != nil {
		tr.Close()
		return nil, err
	}
	// Per-user send limit across the user's connections on this node
	// (moderation; the gateway limits each connection to 50 frames/s).
	limit := moderation.NewUserLimiter(userSendRate, 2*userSendRate)
	limitConns := a.connectionLimit(tr) // max_devices (realtime_devices.go)
	msgCap := newMessageCap(a)          // messages per period (realtime_usage.go)
	svc.SetHooks(realtime.Hooks{
		BeforeSend: func(ctx context.Context, c realtime.ConnInfo, _ realtime.MessageInput) error {
			if !limit.Allow(c.TenantID, c.UserID, time.Now()) {
				return abacus.Errorf(abacus.KindRateLimited, "rate_limited",
					"this user sends more than %d messages a second from all their devices: slow down", userSendRate)
			}
			return msgCap.check(ctx, c.TenantID, c.UserID)
		},
		Connect: func(ctx context.Context, c realtime.ConnInfo) error {
			if err := limitConns(ctx, c); err != nil {
				return err
			}
			m.Connected()
			tr.Connected(c.TenantID, c.UserID)
			return nil
		},
		Disconnect: func(c realtime.ConnInfo, code int) {
			m.Disconnected(code)
			tr.Disconnected(c.TenantID, c.UserID)
		},
		Sent: func(_ context.Context, tenant string, s realtime.Sent) {
			m.Received()
			used.sent(tenant, s)
		},
		Delivered: func(_ realtime.ConnInfo, _ string, _ int64, accepted time.Time) {
			m.Delivered(accepted, time.Now())
		},
		Online: tr.Online,
		Notify: a.notifyOffline,
	})
	presence.RegisterRoutes(a.HTTP, tr)
	// max_devices counts live connections beside sessions.
	a.Organizations().AddDeviceCounter(func(_ context.Context, _ db.Querier, tenant string, users []string) (int, error) {
		return tr.Devices(tenant, users), nil
	})
	return tr.Close, nil
}
