package risk

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// Nodes keep their counters (and graphs) in step through JetStream: after
// a group commit, the node publishes the stored events (as stored:
// identifiers hashed) in one message to PeerSubjectPrefix+<tenant> on
// stream PeerStream, with its node id; every node consumes the stream
// from its start (an ordered consumer, resumed where it was after a
// reconnect) and applies the other nodes' events. At start a node first
// subscribes, then rebuilds from the database (the source of truth),
// then applies what arrived meanwhile, skipping events the rebuild read.
// The stream keeps an hour (no byte cap: a stream's MaxBytes is reserved
// from JetStream's storage up front, and 1 GiB refused to start on a
// small data disk): a node that falls further
// behind sees a gap in the stream's sequence numbers and rebuilds its
// counters from the database (resyncCounters: the backfill of a new
// counter, for all of them); how far behind it runs is logged.
const (
	PeerStream        = "ABACUS_RISK"
	PeerSubjectPrefix = "abacus.risk.events."
	peerNodeHeader    = "Abacus-Risk-Node"
	peerMaxAge        = time.Hour
	// peerLagWarning is the lag behind the stream that is logged (at most
	// once a minute).
	peerLagWarning = 30 * time.Second
	// catchUp is how far before the subscription an event may have been
	// decided and still be published after it: its id is remembered by
	// the rebuild so the stream's copy is skipped.
	catchUp = time.Minute
)

// onlyNode reports whether this process is the only one that can run
// risk: an embedded NATS server that listens on no port (`abacus serve`
// on one machine) has no other client, so no other node could consume
// this node's events or publish its own. Then nothing is published (the
// stream would store a copy of every commit, and deliver it back to this
// node, for no other reader).
func onlyNode(bus *natsbus.Bus) bool {
	return bus.Embedded() && bus.ClientURL() == ""
}

// peers is the JetStream side of one node.
type peers struct {
	s    *Service
	js   jetstream.JetStream
	node string

	mu      sync.Mutex
	live    bool
	buffer  []peerMsg
	skipIDs map[string]bool
	cc      jetstream.ConsumeContext

	// The consumer's position (the Consume callback only).
	lastSeq   uint64
	lagLogged time.Time
	resyncs   int
}

// peerMsg is a message of the stream with its sequence number and time.
type peerMsg struct {
	msg *nats.Msg
	seq uint64
	at  time.Time
}

// peerStreamConfig is the stream of stored risk events.
func peerStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: PeerStream, Subjects: []string{PeerSubjectPrefix + ">"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: peerMaxAge}
}

// subscribe provisions the stream and starts an ordered consumer of new
// messages; they are buffered until the rebuild is done (goLive).
func (p *peers) subscribe(ctx context.Context, bus *natsbus.Bus) error {
	if _, err := bus.EnsureStream(ctx, peerStreamConfig()); err != nil {
		return fmt.Errorf("risk: stream %s: %w", PeerStream, err)
	}
	cons, err := p.js.OrderedConsumer(ctx, PeerStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{PeerSubjectPrefix + ">"}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("risk: consuming %s: %w", PeerStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		pm := peerMsg{msg: &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}}
		if meta, err := m.Metadata(); err == nil {
			pm.seq, pm.at = meta.Sequence.Stream, meta.Timestamp
		}
		p.mu.Lock()
		if !p.live {
			p.buffer = append(p.buffer, pm)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.receive(pm)
	})
	if err != nil {
		return fmt.Errorf("risk: consuming %s: %w", PeerStream, err)
	}
	p.cc = cc
	return nil
}

// goLive applies the buffered messages, skipping events the rebuild read,
// and from then on applies messages as they come.
func (p *peers) goLive() {
	for {
		p.mu.Lock()
		buf := p.buffer
		p.buffer = nil
		if len(buf) == 0 {
			p.live = true
			p.skipIDs = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, m := range buf {
			p.receive(m)
		}
	}
}

// receive applies a message after checking the consumer's position: a
// gap in the stream's sequence means messages expired before this node
// read them (it ran more than the stream's age or size behind), so the
// counters are rebuilt from the database; a lag is logged.
func (p *peers) receive(m peerMsg) {
	if m.seq != 0 {
		if p.lastSeq != 0 && m.seq > p.lastSeq+1 {
			p.resyncs++
			p.s.log.Error("risk: the stream of other nodes' events has a gap (this node fell behind its retention); rebuilding the counters from the database",
				"stream", PeerStream, "missed_messages", m.seq-p.lastSeq-1, "resyncs", p.resyncs)
			p.s.resyncCounters()
		}
		p.lastSeq = m.seq
	}
	if lag := time.Since(m.at); !m.at.IsZero() && lag > peerLagWarning && time.Since(p.lagLogged) > time.Minute {
		p.lagLogged = time.Now()
		p.s.log.Warn("risk: applying other nodes' events behind the stream", "stream", PeerStream, "lag", lag.Round(time.Second))
	}
	p.apply(m.msg)
}

func (p *peers) stop() {
	if p.cc != nil {
		p.cc.Stop()
	}
}

// publish sends a commit's stored events, one message per tenant.
func (p *peers) publish(stored []*pending) {
	byTenant := map[string][][]byte{}
	var order []string
	for _, it := range stored {
		if byTenant[it.tenant] == nil {
			order = append(order, it.tenant)
		}
		byTenant[it.tenant] = append(byTenant[it.tenant], it.evJSON)
	}
	for _, t := range order {
		data := append(append([]byte{'['}, bytes.Join(byTenant[t], []byte{','})...), ']')
		msg := &nats.Msg{Subject: PeerSubjectPrefix + subjectToken(t), Data: data, Header: nats.Header{}}
		msg.Header.Set(peerNodeHeader, p.node)
		msg.Header.Set("Abacus-Tenant-Id", t)
		if _, err := p.js.PublishMsgAsync(msg); err != nil {
			p.s.log.Error("risk: publishing stored events to the other nodes", "tenant_id", t, "err", err)
		}
	}
}

// subjectToken makes a tenant id safe as one subject token.
func subjectToken(t string) string {
	return strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_").Replace(t)
}

// apply counts another node's events.
func (p *peers) apply(m *nats.Msg) {
	if m.Header.Get(peerNodeHeader) == p.node {
		return
	}
	tenant := m.Header.Get("Abacus-Tenant-Id")
	var evs []*Event
	if err := gojson.Unmarshal(m.Data, &evs); err != nil || tenant == "" {
		p.s.log.Error("risk: unreadable message from another node; skipped", "subject", m.Subject, "err", err)
		return
	}
	p.mu.Lock()
	skip := p.skipIDs
	p.mu.Unlock()
	for _, ev := range evs {
		if skip[ev.ID] {
			continue
		}
		ev.finish()
		p.s.observe(tenant, ev)
	}
}

// recent reports whether an event id was made within catchUp of since.
func recent(id string, since time.Time) bool {
	_, suffix, ok := strings.Cut(id, "_")
	if !ok {
		return false
	}
	u, err := ulid.ParseStrict(strings.ToUpper(suffix))
	if err != nil {
		return false
	}
	return !ulid.Time(u.Time()).Before(since.Add(-catchUp))
}

// resyncCounters rebuilds every counter state from the database, as a
// counter created while events flow is built (backfill): each is replaced
// by a building state that counts from now on, then filled from the
// stored events in the background.
func (s *Service) resyncCounters() {
	for _, old := range s.counters.all() {
		tenant := old.tenant
		st := newBuildingState(old.def)
		st.tenant = tenant
		s.counters.put(tenant, st)
		s.invalidate(tenant)
		go s.backfillUntilDone(tenant, st)
	}
}

// observe counts an event stored by another node (or fed in) in this
// node's counters and graph.
func (s *Service) observe(tenant string, ev *Event) {
	s.counters.mu.RLock()
	states := make([]*counterState, 0, len(s.counters.state[tenant]))
	for _, st := range s.counters.state[tenant] {
		states = append(states, st)
	}
	s.counters.mu.RUnlock()
	for _, st := range states {
		st.add(ev, true)
	}
	if s.graph != nil {
		s.graph.Observe(tenant, ev)
	}
}

// newNodeID names this process among the nodes.
func newNodeID() string { return abacus.NewID("node") }
