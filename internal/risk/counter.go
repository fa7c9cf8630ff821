package risk

import (
	"fmt"
	"hash/maphash"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
)

// Counter ops.
const (
	OpCount    = "count"
	OpDistinct = "distinct"
	OpSum      = "sum"
)

// Bounds of counter definitions.
const (
	MinWindow          = time.Minute
	MaxWindow          = 30 * 24 * time.Hour
	MaxCountersTenant  = 50
	maxCounterNameSize = 63
)

// Counter is a velocity counter a tenant defines: over the events of
// EventTypes (every type when empty) that carry Key, within Window up to
// and including the event being decided: how many (count), how many
// distinct values of Of (distinct), or the total of Of (sum).
type Counter struct {
	ID         string    `json:"id"`
	Name       string    `json:"name" doc:"rules read it as counters.<name>"`
	Key        string    `json:"key" doc:"the identifier counted per value, e.g. device_id"`
	Op         string    `json:"op" enum:"count,distinct,sum"`
	Of         string    `json:"of,omitempty" doc:"distinct: an identifier or properties.<name>; sum: amount or properties.<name>"`
	Window     string    `json:"window" doc:"1m to 30d: a Go duration (10m, 24h) or days (7d)"`
	EventTypes []string  `json:"event_types" doc:"the event types counted; [] counts every type"`
	CreatedAt  time.Time `json:"created_at"`
	window     time.Duration
}

// CounterInput creates a counter.
type CounterInput struct {
	Name       string   `json:"name" minLength:"1" maxLength:"63"`
	Key        string   `json:"key"`
	Op         string   `json:"op" enum:"count,distinct,sum"`
	Of         string   `json:"of,omitempty"`
	Window     string   `json:"window"`
	EventTypes []string `json:"event_types,omitempty"`
}

var counterName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
var eventType = regexp.MustCompile(`^(registration|login|order|payment|refund|dispute|custom:[a-z0-9][a-z0-9_.-]{0,63})$`)
var propertyName = regexp.MustCompile(`^properties\.[A-Za-z0-9_-]{1,64}$`)

// ParseWindow reads 10m, 24h, 7d, 1h30m.
func ParseWindow(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("%q is not a window such as 10m, 24h or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	w, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a window such as 10m, 24h or 7d", s)
	}
	return w, nil
}

// validate checks a counter definition; every problem names its field.
func (in CounterInput) validate() (Counter, error) {
	var v abacus.Validation
	if !counterName.MatchString(in.Name) {
		v.Add("name", "%q is not a counter name: a lower-case letter, then up to 62 lower-case letters, digits or _", in.Name)
	}
	if !slices.Contains(identifierNames, in.Key) && !propertyName.MatchString(in.Key) {
		v.Add("key", "unknown identifier %q; use one of %s or properties.<name>", in.Key, strings.Join(identifierNames, ", "))
	}
	switch in.Op {
	case OpCount:
		if in.Of != "" {
			v.Add("of", "a count counts events; of is for distinct and sum")
		}
	case OpDistinct:
		if in.Of == "" {
			v.Add("of", "is required for distinct: the identifier whose values are counted, e.g. card_fingerprint")
		} else if !slices.Contains(identifierNames, in.Of) && !propertyName.MatchString(in.Of) && in.Of != "card_last4" {
			v.Add("of", "unknown identifier %q; use one of %s or properties.<name>", in.Of, strings.Join(identifierNames, ", "))
		}
	case OpSum:
		if in.Of != "amount" && !propertyName.MatchString(in.Of) {
			v.Add("of", "a sum adds amount or a numeric properties.<name>, not %q", in.Of)
		}
	default:
		v.Add("op", "unknown op %q; use count, distinct or sum", in.Op)
	}
	w, err := ParseWindow(in.Window)
	switch {
	case err != nil:
		v.Add("window", "%s", err.Error())
	case w < MinWindow || w > MaxWindow:
		v.Add("window", "must be between 1m and 30d, got %s", in.Window)
	}
	for i, t := range in.EventTypes {
		if !eventType.MatchString(t) {
			v.Add(fmt.Sprintf("event_types[%d]", i), "unknown event type %q; use registration, login, order, payment, refund, dispute or custom:<name>", t)
		}
	}
	if err := v.Err("invalid_counter"); err != nil {
		return Counter{}, err
	}
	types := slices.Clone(in.EventTypes)
	if types == nil {
		types = []string{}
	}
	sort.Strings(types)
	return Counter{Name: in.Name, Key: in.Key, Op: in.Op, Of: in.Of, Window: in.Window, EventTypes: slices.Compact(types), window: w}, nil
}

func (c *Counter) counts(e *Event) bool {
	return len(c.EventTypes) == 0 || slices.Contains(c.EventTypes, e.Type)
}

// entry is one event in a series: its time (unix µs) and the value it
// adds (sum: millionths; distinct: the hash of the value).
type entry struct {
	at  int64
	val int64
}

// series is one counter's events for one key value, in time order. The
// tail from live on is the current window of the newest event; its sum
// and distinct values are kept incrementally, so the usual question (the
// newest event's window) costs O(1). Older entries are kept up to the
// window plus LateWindow for late events, whose window is summed afresh.
type series struct {
	es       []entry
	live     int
	sum      int64
	distinct valueCounts
	// first holds es while a key has seen one event (most keys): no
	// array of its own for the collector to visit.
	first [1]entry
}

func newSeries() *series {
	s := &series{}
	s.es = s.first[:0]
	return s
}

// valueCounts counts the values of a distinct counter's live window: up
// to two inline, in a map past that. Most keys (a device, a card, a
// customer) see one or two values in a window, and a map per key was a
// heap object holding pointers, which every collection visited: the
// counters' objects were ~73 % of the live objects under the risk
// benchmark, and the mark phase's time goes to such visits.
type valueCounts struct {
	vals [2]int64
	cnt  [2]int32
	n    int32 // values inline, while m is nil
	m    map[int64]int32
}

func (c *valueCounts) len() int {
	if c.m != nil {
		return len(c.m)
	}
	return int(c.n)
}

func (c *valueCounts) get(v int64) int32 {
	if c.m != nil {
		return c.m[v]
	}
	for i := range c.n {
		if c.vals[i] == v {
			return c.cnt[i]
		}
	}
	return 0
}

func (c *valueCounts) inc(v int64) {
	if c.m != nil {
		c.m[v]++
		return
	}
	for i := range c.n {
		if c.vals[i] == v {
			c.cnt[i]++
			return
		}
	}
	if int(c.n) < len(c.vals) {
		c.vals[c.n], c.cnt[c.n] = v, 1
		c.n++
		return
	}
	c.m = make(map[int64]int32, 2*len(c.vals))
	for i := range c.n {
		c.m[c.vals[i]] = c.cnt[i]
	}
	c.m[v] = 1
	c.n = 0
}

// dec takes one v away; a value counted to zero goes.
func (c *valueCounts) dec(v int64) {
	if c.m != nil {
		if c.m[v]--; c.m[v] <= 0 {
			delete(c.m, v)
		}
		return
	}
	for i := range c.n {
		if c.vals[i] == v {
			if c.cnt[i]--; c.cnt[i] <= 0 {
				last := c.n - 1
				c.vals[i], c.cnt[i] = c.vals[last], c.cnt[last]
				c.n = last
			}
			return
		}
	}
}

func (c *valueCounts) reset() { *c = valueCounts{} }

// counterState holds one counter's series for one tenant. A state made
// for a counter created while events flow is building until
// Service.backfill has read the stored events: meanwhile it counts new
// events as usual and also keeps them by id (pending), so the backfill
// counts each event once, whether the database or the live path saw it.
type counterState struct {
	def      Counter
	tenant   string
	mu       sync.Mutex
	by       map[string]*series
	building bool
	pending  map[string]*Event
	yield    func() // tests: runs each time prune lets go of mu
}

var seed = maphash.MakeSeed()

func (c *counterState) valueOf(e *Event) (int64, bool) {
	switch c.def.Op {
	case OpSum:
		return e.Number(c.def.Of)
	case OpDistinct:
		s := e.Identifier(c.def.Of)
		if s == "" {
			return 0, false
		}
		return int64(maphash.String(seed, s)), true
	}
	return 1, true
}

// add records e (when the counter counts it) and returns the counter's
// value for e's window, e included; apply=false answers as if e were
// added without keeping it (a pure question).
func (c *counterState) add(e *Event, apply bool) float64 {
	key := e.Identifier(c.def.Key)
	if key == "" {
		return 0
	}
	at := e.Time.UnixMicro()
	val, hasVal := c.valueOf(e)
	counted := c.def.counts(e) && hasVal
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.by[key]
	if s == nil {
		if !counted {
			return 0
		}
		s = newSeries()
		c.by[key] = s
	}
	w := c.def.window.Microseconds()
	if !apply || !counted {
		return c.result(s.windowValue(c.def.Op, at, w, counted, val))
	}
	if c.building {
		c.pending[e.ID] = e
	}
	s.insert(c.def.Op, entry{at: at, val: val}, w)
	return c.result(s.windowValue(c.def.Op, at, w, false, 0))
}

func (c *counterState) result(v int64) float64 {
	if c.def.Op == OpSum {
		return float64(v) / 1e6
	}
	return float64(v)
}

// remove takes back an entry added for e (its commit failed).
func (c *counterState) remove(e *Event) {
	key := e.Identifier(c.def.Key)
	val, ok := c.valueOf(e)
	if key == "" || !ok || !c.def.counts(e) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.building {
		delete(c.pending, e.ID)
	}
	c.removeLocked(key, e.Time.UnixMicro(), val)
}

func (c *counterState) removeLocked(key string, at, val int64) {
	s := c.by[key]
	if s == nil {
		return
	}
	for i := len(s.es) - 1; i >= 0; i-- {
		if s.es[i].at == at && s.es[i].val == val {
			if i >= s.live {
				s.unlive(c.def.Op, s.es[i])
			} else {
				s.live--
			}
			s.es = slices.Delete(s.es, i, i+1)
			if i == len(s.es) {
				// The newest went: the live window ends earlier now and
				// may take back entries it had passed.
				s.relive(c.def.Op, c.def.window.Microseconds())
			}
			return
		}
	}
}

// relive recomputes the live window (the newest entry's) from scratch.
func (s *series) relive(op string, w int64) {
	s.sum = 0
	s.distinct.reset()
	newest := s.newest()
	s.live = sort.Search(len(s.es), func(i int) bool { return s.es[i].at > newest-w })
	for _, e := range s.es[s.live:] {
		s.enlive(op, e)
	}
}

func (s *series) newest() int64 {
	if len(s.es) == 0 {
		return -1 << 62
	}
	return s.es[len(s.es)-1].at
}

func (s *series) enlive(op string, e entry) {
	switch op {
	case OpSum:
		s.sum += e.val
	case OpDistinct:
		s.distinct.inc(e.val)
	}
}

func (s *series) unlive(op string, e entry) {
	switch op {
	case OpSum:
		s.sum -= e.val
	case OpDistinct:
		s.distinct.dec(e.val)
	}
}

// insert adds e in time order and moves the live window to the newest
// event's.
func (s *series) insert(op string, e entry, w int64) {
	i := len(s.es)
	for i > 0 && s.es[i-1].at > e.at {
		i--
	}
	s.es = slices.Insert(s.es, i, e)
	if newest := s.newest(); e.at > newest-w {
		s.enlive(op, e) // in the live window (so at or after live)
	} else if i <= s.live {
		s.live++ // late, before the live window
	}
	newest := s.newest()
	for s.live < len(s.es) && s.es[s.live].at <= newest-w {
		s.unlive(op, s.es[s.live])
		s.live++
	}
}

// windowValue is the counter over (at-w, at], plus extra when with.
func (s *series) windowValue(op string, at, w int64, with bool, extra int64) int64 {
	if at >= s.newest() {
		// The live window ends at the newest entry; at may be later.
		lo := s.live
		for lo < len(s.es) && s.es[lo].at <= at-w {
			lo++
		}
		if lo == s.live {
			var v int64
			switch op {
			case OpCount:
				v = int64(len(s.es) - s.live)
			case OpSum:
				v = s.sum
			case OpDistinct:
				v = int64(s.distinct.len())
				if with {
					if s.distinct.get(extra) > 0 {
						return v
					}
				}
			}
			if with {
				if op == OpSum {
					return v + extra
				}
				return v + 1
			}
			return v
		}
	}
	// A late event, or a window that starts inside the live one.
	lo := sort.Search(len(s.es), func(i int) bool { return s.es[i].at > at-w })
	hi := sort.Search(len(s.es), func(i int) bool { return s.es[i].at > at })
	if op != OpCount && lo <= s.live && hi >= s.live && s.live-lo+len(s.es)-hi < hi-lo {
		// Concurrent requests reach a counter a little out of time
		// order: start from the live window's state rather than summing
		// a hot key's whole window for each of them.
		return s.nearLive(op, lo, hi, with, extra)
	}
	var v int64
	switch op {
	case OpCount:
		v = int64(hi - lo)
		if with {
			v++
		}
	case OpSum:
		for _, e := range s.es[lo:hi] {
			v += e.val
		}
		if with {
			v += extra
		}
	case OpDistinct:
		seen := make(map[int64]bool, hi-lo+1)
		for _, e := range s.es[lo:hi] {
			seen[e.val] = true
		}
		if with {
			seen[extra] = true
		}
		v = int64(len(seen))
	}
	return v
}

// nearLive is the counter over es[lo:hi] plus extra when with, from the
// live window's state (es[live:]): it adds es[lo:live] and takes es[hi:]
// away (lo ≤ live ≤ hi).
func (s *series) nearLive(op string, lo, hi int, with bool, extra int64) int64 {
	if op == OpSum {
		v := s.sum
		for _, e := range s.es[lo:s.live] {
			v += e.val
		}
		for _, e := range s.es[hi:] {
			v -= e.val
		}
		if with {
			v += extra
		}
		return v
	}
	delta := make(map[int64]int32, s.live-lo+len(s.es)-hi)
	for _, e := range s.es[lo:s.live] {
		delta[e.val]++
	}
	for _, e := range s.es[hi:] {
		delta[e.val]--
	}
	v := int64(s.distinct.len())
	for val, d := range delta {
		was := s.distinct.get(val)
		switch now := was + d; {
		case was == 0 && now > 0:
			v++
		case was > 0 && now <= 0:
			v--
		}
	}
	if with && s.distinct.get(extra)+delta[extra] <= 0 {
		v++
	}
	return v
}

// pruneStride is how many series a prune pass looks at between letting
// go of the counter's lock: a whole pass over 100,000 series takes ~2 ms
// (BenchmarkPrune), and every decision that reads the counter would wait
// for it, once a minute.
const pruneStride = 1024

// prune drops entries older than the window plus LateWindow before now,
// and series left empty. It returns the entries kept. Decisions go on
// between strides: they add to series (prune looks at each one under the
// lock) or make new ones (kept whether or not the pass reaches them).
// A build finished meanwhile replaces the map; the pass goes on over the
// one it started with, which is then no longer used.
func (c *counterState) prune(now time.Time) int {
	cut := now.Add(-c.def.window - LateWindow).UnixMicro()
	c.mu.Lock()
	defer c.mu.Unlock()
	by := c.by
	kept, seen := 0, 0
	for k, s := range by {
		if seen++; seen%pruneStride == 0 {
			c.mu.Unlock()
			if c.yield != nil {
				c.yield()
			}
			c.mu.Lock()
			if s = by[k]; s == nil {
				continue
			}
		}
		n := 0
		for n < len(s.es) && s.es[n].at < cut {
			n++
		}
		if n > 0 {
			if n > s.live {
				for _, e := range s.es[s.live:n] {
					s.unlive(c.def.Op, e)
				}
				s.live = n
			}
			s.es = slices.Delete(s.es, 0, n)
			s.live -= n
		}
		if len(s.es) == 0 {
			delete(by, k)
			continue
		}
		kept += len(s.es)
	}
	return kept
}

// counters is every tenant's counter state in this process.
type counters struct {
	mu    sync.RWMutex
	state map[string]map[string]*counterState // tenant → counter id → state
}

func newCounters() *counters {
	return &counters{state: map[string]map[string]*counterState{}}
}

func (cs *counters) get(tenant, id string) *counterState {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return cs.state[tenant][id]
}

func (cs *counters) put(tenant string, st *counterState) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	st.tenant = tenant
	if cs.state[tenant] == nil {
		cs.state[tenant] = map[string]*counterState{}
	}
	cs.state[tenant][st.def.ID] = st
}

func (cs *counters) all() []*counterState {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	var out []*counterState
	for _, m := range cs.state {
		for _, s := range m {
			out = append(out, s)
		}
	}
	return out
}

func newCounterState(def Counter) *counterState {
	return &counterState{def: def, by: map[string]*series{}}
}

// newBuildingState is a state for a counter created while events flow
// (see counterState).
func newBuildingState(def Counter) *counterState {
	st := newCounterState(def)
	st.building, st.pending = true, map[string]*Event{}
	return st
}

// isPending reports whether the live path counted the event id while the
// state was building.
func (c *counterState) isPending(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[id] != nil
}

// finishBuild replaces the series with built's (the stored events, less
// those pending) plus the pending events: each counted once.
func (c *counterState) finishBuild(built *counterState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.pending {
		built.add(e, true)
	}
	c.by, c.building, c.pending = built.by, false, nil
}

// putIfAbsent registers st unless the tenant has a state for its counter
// already, and returns the registered one.
func (cs *counters) putIfAbsent(tenant string, st *counterState) *counterState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.state[tenant] == nil {
		cs.state[tenant] = map[string]*counterState{}
	}
	if old := cs.state[tenant][st.def.ID]; old != nil {
		return old
	}
	st.tenant = tenant
	cs.state[tenant][st.def.ID] = st
	return st
}
