package realtime

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Across nodes, frames travel on NATS core subjects, one per user:
//
//	abacus.rt.<tenant>.u.<user>
//
// A node subscribes to the subject of every user with a connection on it
// (one subscription per user, however many devices), and a node that
// accepts a message publishes it, once stored, to the subject of every
// member. Core NATS, not JetStream: a frame a node misses (a crash, a
// full buffer) is recovered from the database by the client's resume or
// by the gap check of the connection (conn.deliver). Ids that are not
// plain tokens ([A-Za-z0-9_-]) are written "~" + base64url, so any user
// id makes one valid subject token.
const subjectPrefix = "abacus.rt."

// subjectToken turns an id into one NATS subject token, injectively.
func subjectToken(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
		}
	}
	if id == "" {
		return "~"
	}
	return id
}

// UserSubject is the NATS subject of a user's frames.
func UserSubject(tenant, user string) string {
	return subjectPrefix + subjectToken(tenant) + ".u." + subjectToken(user)
}

// envelope is what travels with a frame on the bus: its kind, when the
// message was accepted, its conversation and seq (messages).
type envelope struct {
	kind     byte // kindMessage or kindFrame
	accepted int64
	seq      int64
	conv     string
}

const (
	kindMessage byte = 'm' // a message frame: delivered in seq order, once (conn.deliver)
	kindFrame   byte = 'f' // any other frame, delivered as it comes
	kindResume  byte = 'r' // local only: a resume request queued for the writer
	kindKick    byte = 'k' // close the user's connections: staff disconnected them (4011)
)

// encode returns the envelope and frame as one bus payload:
// kind(1) accepted(8) seq(8) len(conv)(1) conv frame.
func (e envelope) encode(frame []byte) []byte {
	b := make([]byte, 18+len(e.conv)+len(frame))
	b[0] = e.kind
	binary.BigEndian.PutUint64(b[1:], uint64(e.accepted))
	binary.BigEndian.PutUint64(b[9:], uint64(e.seq))
	b[17] = byte(len(e.conv))
	copy(b[18:], e.conv)
	copy(b[18+len(e.conv):], frame)
	return b
}

var errBadEnvelope = errors.New("realtime: malformed bus payload")

func decodeEnvelope(b []byte) (envelope, []byte, error) {
	if len(b) < 18 || (b[0] != kindMessage && b[0] != kindFrame && b[0] != kindKick) || len(b) < 18+int(b[17]) {
		return envelope{}, nil, errBadEnvelope
	}
	n := int(b[17])
	e := envelope{kind: b[0], accepted: int64(binary.BigEndian.Uint64(b[1:])), seq: int64(binary.BigEndian.Uint64(b[9:])),
		conv: string(b[18 : 18+n])}
	return e, b[18+n:], nil
}

type userKey struct{ tenant, user string }

// users are one user's connections on this node.
type users struct {
	key   userKey
	sub   *nats.Subscription
	conns []*conn
}

// hub is this node's registry of connections by user, subscribed on the
// bus for each user it holds.
type hub struct {
	svc *Service
	nc  *nats.Conn
	in  chan *nats.Msg // every user subscription delivers here

	mu        sync.RWMutex
	byUser    map[userKey]*users
	bySubject map[string]*users
	closed    bool
	stop      chan struct{}
	stopOnce  sync.Once
}

func newHub(s *Service, nc *nats.Conn) *hub {
	h := &hub{svc: s, nc: nc, byUser: map[userKey]*users{}, bySubject: map[string]*users{}, stop: make(chan struct{})}
	if nc != nil {
		h.in = make(chan *nats.Msg, s.cfg.BusBuffer)
		go h.dispatch()
	}
	return h
}

func (h *hub) close() {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		for _, u := range h.byUser {
			if u.sub != nil {
				_ = u.sub.Unsubscribe()
			}
		}
		h.mu.Unlock()
		close(h.stop)
	})
}

// dispatch hands frames from the bus to this node's connections. One
// goroutine: handing over never blocks (a full connection queue drops the
// connection), so frames of one user keep their bus order.
func (h *hub) dispatch() {
	for {
		select {
		case <-h.stop:
			return
		case m := <-h.in:
			e, frame, err := decodeEnvelope(m.Data)
			if err != nil {
				h.svc.log.Warn("realtime: undecodable frame on the bus", "subject", m.Subject)
				continue
			}
			h.mu.RLock()
			u := h.bySubject[m.Subject]
			var conns []*conn
			if u != nil {
				conns = u.conns
			}
			h.mu.RUnlock()
			for _, c := range conns {
				c.take(item{env: e, frame: frame})
			}
		}
	}
}

// register adds c; the first connection of a user subscribes to the
// user's subject. When register returns, frames published to the user
// reach c.
func (h *hub) register(c *conn) error {
	k := userKey{c.info.TenantID, c.info.UserID}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errDraining
	}
	u := h.byUser[k]
	if u == nil {
		u = &users{key: k}
		if h.nc != nil {
			subj := UserSubject(k.tenant, k.user)
			sub, err := h.nc.ChanSubscribe(subj, h.in)
			if err != nil {
				h.mu.Unlock()
				return err
			}
			_ = sub.SetPendingLimits(-1, -1)
			u.sub = sub
			h.bySubject[subj] = u
		}
		h.byUser[k] = u
	}
	// Copy on write: dispatch reads conns without the lock.
	u.conns = append(slices.Clip(u.conns), c)
	h.mu.Unlock()
	if h.nc != nil {
		// The server knows the subscription once it answers a ping.
		return h.nc.FlushTimeout(5 * time.Second)
	}
	return nil
}

func (h *hub) unregister(c *conn) {
	k := userKey{c.info.TenantID, c.info.UserID}
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.byUser[k]
	if u == nil {
		return
	}
	i := slices.Index(u.conns, c)
	if i < 0 {
		return
	}
	u.conns = slices.Delete(slices.Clone(u.conns), i, i+1)
	if len(u.conns) == 0 {
		delete(h.byUser, k)
		if u.sub != nil {
			delete(h.bySubject, u.sub.Subject)
			_ = u.sub.Unsubscribe()
		}
	}
}

func (h *hub) local(tenant, user string) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if u := h.byUser[userKey{tenant, user}]; u != nil {
		return u.conns
	}
	return nil
}

func (h *hub) connections(tenant, user string) []ConnInfo {
	var out []ConnInfo
	for _, c := range h.local(tenant, user) {
		out = append(out, c.info)
	}
	return out
}

func (h *hub) all() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*conn
	for _, u := range h.byUser {
		out = append(out, u.conns...)
	}
	return out
}

// publish sends frame to every connection of the users on every node.
func (h *hub) publish(tenant string, users []string, e envelope, frame []byte) {
	if e.accepted == 0 {
		e.accepted = time.Now().UnixNano()
	}
	if h.nc == nil {
		for _, u := range users {
			for _, c := range h.local(tenant, u) {
				c.take(item{env: e, frame: frame})
			}
		}
		return
	}
	payload := e.encode(frame)
	for _, u := range users {
		if err := h.nc.Publish(UserSubject(tenant, u), payload); err != nil {
			// Live delivery is best effort; the message is stored and
			// the client's resume or gap check recovers it.
			h.svc.log.Warn("realtime: publishing failed", "err", err)
			return
		}
	}
}

// publishFrame sends a frame about conversation conv to users.
func (h *hub) publishFrame(tenant string, users []string, frame interface{ conversation() string }) {
	h.publish(tenant, users, envelope{kind: kindFrame, conv: frame.conversation()}, mustJSON(frame))
}

func (f membershipFrame) conversation() string { return f.ConversationID }
func (f receiptFrame) conversation() string    { return f.ConversationID }
func (f updatedFrame) conversation() string    { return f.Message.ConversationID }
func (f typingFrame) conversation() string     { return f.ConversationID }
