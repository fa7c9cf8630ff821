// Package presence tracks which end users have a live connection on any
// realtime node of the cluster.
//
// Each node counts its own connections per user and publishes the new
// count whenever it changes (core NATS, subject abacus.rt.presence.ev),
// so every node knows both who is online and how many devices each user
// has connected (the max_devices limit counts them). Every node also publishes a
// heartbeat each Heartbeat (abacus.rt.presence.hb) carrying how many
// changes it has published. A node that sees a heartbeat from a node it
// does not know, or one announcing changes it missed, asks that node for
// its full list (request abacus.rt.presence.snap.<node>). A node not
// heard from for Expiry is taken as dead: its users go offline everywhere
// (unless connected elsewhere) within Expiry of its last heartbeat — a
// crash (kill -9) included, with no help from the dead node.
//
//	user X on nodes {}  ──first conn anywhere──▶  online
//	online              ──last conn closed, or its node silent for Expiry──▶ offline
//
// Changes cost one small message each and heartbeats one per node per
// Heartbeat, whatever the number of users; nothing is stored. OnChange
// runs on exactly one node per change (see Config.OnChange), which tells
// the users allowed to see it.
package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects of the presence protocol.
const (
	subjectEvent     = "abacus.rt.presence.ev"
	subjectHeartbeat = "abacus.rt.presence.hb"
	subjectSnapshot  = "abacus.rt.presence.snap." // + node
)

// Config shapes a Tracker.
type Config struct {
	Node      string        // this node's id, unique in the cluster (required)
	Heartbeat time.Duration // default 1 s
	Expiry    time.Duration // a node silent this long is dead; default 3 × Heartbeat
	// OnChange is called, on one goroutine and in order, when a user goes
	// online (first connection anywhere) or offline (no connection left,
	// or their nodes died), on the one node that announces the change:
	// the node where the connection opened or closed, or, for the users of
	// a node that died, the live node with the smallest id.
	OnChange func(tenant, user string, online bool)
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.Expiry <= 0 {
		c.Expiry = 3 * c.Heartbeat
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("presence: node is required")
	case c.Expiry <= c.Heartbeat:
		return fmt.Errorf("presence: expiry %s must be longer than the heartbeat %s", c.Expiry, c.Heartbeat)
	}
	return nil
}

// Key is a user of a tenant.
type Key struct{ Tenant, User string }

type event struct {
	Node   string `json:"n"`
	Seq    uint64 `json:"s"` // changes the node published, this one included
	Tenant string `json:"t,omitempty"`
	User   string `json:"u,omitempty"`
	Count  int    `json:"c,omitempty"` // the user's connections on the node; 0: none left
}

type snapshot struct {
	Seq   uint64     `json:"s"`
	Users []snapUser `json:"u"`
}

type snapUser struct {
	Tenant string `json:"t"`
	User   string `json:"u"`
	Count  int    `json:"c"`
}

// peer is what this node knows of another node.
type peer struct {
	seq      uint64 // changes applied
	lastSeen time.Time
	users    map[Key]int // connections per user
	syncing  bool
}

// Tracker is one node's view of the cluster's presence. Safe for
// concurrent use.
type Tracker struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	subs []*nats.Subscription

	mu    sync.Mutex
	local map[Key]int // this node's connections per user
	seq   uint64      // changes published
	peers map[string]*peer
	// where[k] counts the nodes (this one included) holding user k;
	// devices[k] their connections.
	where   map[Key]int
	devices map[Key]int

	changes chan change
	stop    chan struct{}
	done    sync.WaitGroup
	once    sync.Once
}

type change struct {
	k      Key
	online bool
}

// New starts a tracker on nc. Close stops it.
func New(nc *nats.Conn, cfg Config, log *slog.Logger) (*Tracker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, nc: nc, log: log, local: map[Key]int{}, peers: map[string]*peer{}, where: map[Key]int{}, devices: map[Key]int{},
		changes: make(chan change, 4096), stop: make(chan struct{})}
	// Changes and heartbeats share one subscription, so a node's
	// heartbeat is handled after the changes it published before it.
	for subj, h := range map[string]nats.MsgHandler{
		"abacus.rt.presence.*": func(m *nats.Msg) {
			switch m.Subject {
			case subjectHeartbeat:
				t.onHeartbeat(m)
			case subjectEvent:
				t.onEvent(m)
			}
		},
		subjectSnapshot + cfg.Node: t.onSnapshotRequest,
	} {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("presence: subscribing to %s: %w", subj, err)
		}
		t.subs = append(t.subs, s)
	}
	if err := nc.Flush(); err != nil {
		t.Close()
		return nil, fmt.Errorf("presence: %w", err)
	}
	t.done.Add(2)
	go t.beat()
	go t.notify()
	return t, nil
}

// Close stops publishing heartbeats (other nodes take this node's users
// offline after Expiry) and stops OnChange. Safe to call twice.
func (t *Tracker) Close() {
	t.once.Do(func() {
		for _, s := range t.subs {
			_ = s.Unsubscribe()
		}
		close(t.stop)
		t.done.Wait()
	})
}

// Connected records a connection of user on this node.
func (t *Tracker) Connected(tenant, user string) {
	k := Key{tenant, user}
	t.mu.Lock()
	t.local[k]++
	t.devices[k]++
	if t.local[k] == 1 {
		t.addWhere(k, true)
	}
	t.seq++
	t.publish(event{Node: t.cfg.Node, Seq: t.seq, Tenant: tenant, User: user, Count: t.local[k]})
	t.mu.Unlock()
}

// Disconnected records that a connection of user on this node closed.
func (t *Tracker) Disconnected(tenant, user string) {
	k := Key{tenant, user}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.local[k] == 0 {
		return
	}
	t.local[k]--
	t.addDevices(k, -1)
	n := t.local[k]
	if n == 0 {
		delete(t.local, k)
		t.dropWhere(k, true)
	}
	t.seq++
	t.publish(event{Node: t.cfg.Node, Seq: t.seq, Tenant: tenant, User: user, Count: n})
}

func (t *Tracker) addDevices(k Key, d int) {
	t.devices[k] += d
	if t.devices[k] <= 0 {
		delete(t.devices, k)
	}
}

// Devices returns the live connections of users of tenant on every node.
func (t *Tracker) Devices(tenant string, users []string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, u := range users {
		n += t.devices[Key{tenant, u}]
	}
	return n
}

// Online reports whether user has a live connection on some node, as
// far as this node knows (a change reaches every node within
// milliseconds; a dead node's users within Expiry).
func (t *Tracker) Online(tenant, user string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.where[Key{tenant, user}] > 0
}

// OnlineHere reports whether user has a live connection on this node.
func (t *Tracker) OnlineHere(tenant, user string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local[Key{tenant, user}] > 0
}

// publish sends e (t.mu held; NATS buffers, so this does not block).
func (t *Tracker) publish(e any) {
	b, _ := json.Marshal(e)
	subj := subjectEvent
	if ev, ok := e.(event); ok && ev.Tenant == "" {
		subj = subjectHeartbeat
	}
	if err := t.nc.Publish(subj, b); err != nil {
		t.log.Warn("presence: publishing", "err", err)
	}
}

func (t *Tracker) addWhere(k Key, announce bool) {
	t.where[k]++
	if t.where[k] == 1 && announce {
		t.emit(change{k, true})
	}
}

func (t *Tracker) dropWhere(k Key, announce bool) {
	if t.where[k] == 0 {
		return
	}
	t.where[k]--
	if t.where[k] == 0 {
		delete(t.where, k)
		if announce {
			t.emit(change{k, false})
		}
	}
}

func (t *Tracker) emit(c change) {
	if t.cfg.OnChange == nil {
		return
	}
	select {
	case t.changes <- c:
	default:
		t.log.Warn("presence: change queue full, a presence frame was dropped", "tenant", c.k.Tenant)
	}
}

func (t *Tracker) notify() {
	defer t.done.Done()
	for {
		select {
		case <-t.stop:
			return
		case c := <-t.changes:
			t.cfg.OnChange(c.k.Tenant, c.k.User, c.online)
		}
	}
}

// beat publishes heartbeats and expires silent nodes.
func (t *Tracker) beat() {
	defer t.done.Done()
	tick := time.NewTicker(t.cfg.Heartbeat)
	defer tick.Stop()
	for {
		t.mu.Lock()
		t.publish(event{Node: t.cfg.Node, Seq: t.seq})
		now := time.Now()
		for id, p := range t.peers {
			if now.Sub(p.lastSeen) > t.cfg.Expiry {
				delete(t.peers, id)
				t.log.Info("presence: node silent, its users are offline", "node", id, "users", len(p.users))
				for k := range p.users {
					t.apply(p, k, 0, t.announcer())
				}
			}
		}
		t.mu.Unlock()
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
	}
}

func (t *Tracker) peer(id string) *peer {
	p := t.peers[id]
	if p == nil {
		p = &peer{users: map[Key]int{}}
		t.peers[id] = p
	}
	p.lastSeen = time.Now()
	return p
}

func (t *Tracker) onEvent(m *nats.Msg) {
	var e event
	if json.Unmarshal(m.Data, &e) != nil || e.Node == t.cfg.Node {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peer(e.Node)
	if p.syncing || e.Seq != p.seq+1 {
		if !p.syncing && e.Seq > p.seq+1 {
			t.resync(e.Node, p)
		}
		return
	}
	p.seq = e.Seq
	t.apply(p, Key{e.Tenant, e.User}, e.Count, false)
}

// announcer reports whether this node has the smallest id of the live
// nodes it knows (t.mu held).
func (t *Tracker) announcer() bool {
	for id := range t.peers {
		if id < t.cfg.Node {
			return false
		}
	}
	return true
}

// apply sets user k's connections on node p to n; announce: this node
// announces a resulting change.
func (t *Tracker) apply(p *peer, k Key, n int, announce bool) {
	old := p.users[k]
	if old == n {
		return
	}
	t.addDevices(k, n-old)
	if n == 0 {
		delete(p.users, k)
		t.dropWhere(k, announce)
		return
	}
	p.users[k] = n
	if old == 0 {
		t.addWhere(k, announce)
	}
}

func (t *Tracker) onHeartbeat(m *nats.Msg) {
	var e event
	if json.Unmarshal(m.Data, &e) != nil || e.Node == t.cfg.Node {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.peers[e.Node]
	p := t.peer(e.Node)
	if (!known || e.Seq != p.seq) && !p.syncing {
		t.resync(e.Node, p)
	}
}

// resync asks node for its full list (t.mu held); the answer replaces
// what this node knew of it.
func (t *Tracker) resync(node string, p *peer) {
	p.syncing = true
	go func() {
		var s snapshot
		m, err := t.nc.Request(subjectSnapshot+node, nil, 5*time.Second)
		if err == nil {
			err = json.Unmarshal(m.Data, &s)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		p.syncing = false
		if err != nil {
			t.log.Warn("presence: snapshot of a node failed; retried on its next heartbeat", "node", node, "err", err)
			p.seq = ^uint64(0) // differs from any heartbeat: ask again
			return
		}
		if t.peers[node] != p {
			return // expired meanwhile
		}
		now := map[Key]int{}
		for _, u := range s.Users {
			now[Key{u.Tenant, u.User}] = u.Count
		}
		for k := range p.users {
			if now[k] == 0 {
				t.apply(p, k, 0, false)
			}
		}
		for k, n := range now {
			t.apply(p, k, n, false)
		}
		p.seq = s.Seq
	}()
}

func (t *Tracker) onSnapshotRequest(m *nats.Msg) {
	t.mu.Lock()
	s := snapshot{Seq: t.seq, Users: make([]snapUser, 0, len(t.local))}
	for k, n := range t.local {
		s.Users = append(s.Users, snapUser{k.Tenant, k.User, n})
	}
	t.mu.Unlock()
	b, _ := json.Marshal(s)
	_ = m.Respond(b)
}
