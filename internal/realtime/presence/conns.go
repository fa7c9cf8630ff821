package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// subjectConns is where a listing of a user's connections is asked of
// every node.
const subjectConns = "abacus.rt.presence.conns"

type connsQuery struct {
	Tenant string `json:"t"`
	User   string `json:"u"`
}

// ServeConnections answers listings of a user's connections on this node
// with local(tenant, user), a JSON array. Call once; Close stops it.
func (t *Tracker) ServeConnections(local func(tenant, user string) []json.RawMessage) error {
	s, err := t.nc.Subscribe(subjectConns, func(m *nats.Msg) {
		var q connsQuery
		if json.Unmarshal(m.Data, &q) != nil || m.Reply == "" {
			return
		}
		b, _ := json.Marshal(local(q.Tenant, q.User))
		_ = m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("presence: serving connection listings: %w", err)
	}
	t.mu.Lock()
	t.subs = append(t.subs, s)
	t.mu.Unlock()
	return t.nc.Flush()
}

// GatherConnections asks every node for the user's connections and
// returns them all. It waits for as many answers as the nodes this node
// knows of (itself included), or until ctx ends or a second passes, so a
// node that died but is not yet expired costs at most that second.
func (t *Tracker) GatherConnections(ctx context.Context, tenant, user string) ([]json.RawMessage, error) {
	t.mu.Lock()
	want := len(t.peers) + 1
	t.mu.Unlock()
	inbox := t.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := t.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("presence: listing connections: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	q, _ := json.Marshal(connsQuery{Tenant: tenant, User: user})
	if err := t.nc.PublishRequest(subjectConns, inbox, q); err != nil {
		return nil, fmt.Errorf("presence: listing connections: %w", err)
	}
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	var out []json.RawMessage
	for got := 0; got < want; got++ {
		select {
		case m := <-ch:
			var part []json.RawMessage
			if json.Unmarshal(m.Data, &part) == nil {
				out = append(out, part...)
			}
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}
