package inapp

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// subjectPrefix names the NATS core subjects items travel on:
// abacus.inbox.<tenant>.<kind>.<id>. Core, not JetStream: a stream that
// misses one resumes from the database.
const subjectPrefix = "abacus.inbox."

// hub hands published items to the streams open in this process.
type hub struct {
	nc     *nats.Conn
	log    *slog.Logger
	buffer int
	sub    *nats.Subscription

	mu      sync.Mutex
	streams map[Person]map[*stream]struct{}
}

// stream is one open SSE connection's queue. When it is full the
// connection is dropped (gone is closed): the client resumes with
// Last-Event-ID rather than the process holding an unbounded backlog.
type stream struct {
	items    chan InboxItem
	gone     chan struct{}
	goneOnce sync.Once
}

func newHub(nc *nats.Conn, log *slog.Logger, buffer int) *hub {
	h := &hub{nc: nc, log: log, buffer: buffer, streams: map[Person]map[*stream]struct{}{}}
	if nc != nil {
		sub, err := nc.Subscribe(subjectPrefix+">", h.receive)
		if err != nil {
			// Streams then get only what this process stores; resuming
			// still fetches the rest from the database.
			log.Warn("in-app notifications: subscribing to the bus failed", "err", err)
		}
		h.sub = sub
	}
	return h
}

func (h *hub) close() {
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
	}
}

func subject(p Person) string {
	return subjectPrefix + p.TenantID + "." + p.Kind + "." + p.ID
}

// publish sends it to p's streams on every node (through the bus when
// there is one, which brings it back to this process too).
func (h *hub) publish(p Person, it InboxItem) {
	if h.nc == nil || h.sub == nil {
		h.fanOut(p, it)
		return
	}
	b, err := json.Marshal(it)
	if err == nil {
		err = h.nc.Publish(subject(p), b)
	}
	if err != nil {
		h.log.Warn("in-app notifications: publishing failed; open streams get it on resume", "err", err)
	}
}

func (h *hub) receive(m *nats.Msg) {
	parts := strings.SplitN(strings.TrimPrefix(m.Subject, subjectPrefix), ".", 3)
	if len(parts) != 3 {
		return
	}
	var it InboxItem
	if err := json.Unmarshal(m.Data, &it); err != nil {
		h.log.Warn("in-app notifications: undecodable item on the bus", "subject", m.Subject, "err", err)
		return
	}
	h.fanOut(Person{TenantID: parts[0], Kind: parts[1], ID: parts[2]}, it)
}

func (h *hub) fanOut(p Person, it InboxItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams[p] {
		select {
		case st.items <- it:
		default:
			st.goneOnce.Do(func() { close(st.gone) })
		}
	}
}

func (h *hub) open(p Person) *stream {
	st := &stream{items: make(chan InboxItem, h.buffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[p] == nil {
		h.streams[p] = map[*stream]struct{}{}
	}
	h.streams[p][st] = struct{}{}
	return st
}

func (h *hub) leave(p Person, st *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams[p], st)
	if len(h.streams[p]) == 0 {
		delete(h.streams, p)
	}
}
