package graph

import (
	"sort"
	"sync"
	"time"
)

// Graphs holds every tenant's graph; safe for concurrent use.
type Graphs struct {
	opts Options
	mu   sync.RWMutex
	by   map[string]*Graph
}

// NewGraphs returns an empty set; every tenant's graph gets opts.
func NewGraphs(opts Options) *Graphs {
	return &Graphs{opts: opts.withDefaults(), by: map[string]*Graph{}}
}

// Tenant returns the tenant's graph, creating an empty one.
func (s *Graphs) Tenant(tenant string) *Graph {
	s.mu.RLock()
	g := s.by[tenant]
	s.mu.RUnlock()
	if g != nil {
		return g
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g = s.by[tenant]; g == nil {
		g = New(s.opts)
		s.by[tenant] = g
	}
	return g
}

// Lookup returns the tenant's graph, or nil when it has none yet.
func (s *Graphs) Lookup(tenant string) *Graph {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.by[tenant]
}

// Tenants lists the tenants with a graph, sorted.
func (s *Graphs) Tenants() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.by))
	for t := range s.by {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// RebuildDue rebuilds every tenant's graph whose budget is exceeded, or
// every one when all is true, dropping edges last seen before cutoff (zero:
// none); it returns the edges dropped.
func (s *Graphs) RebuildDue(cutoff time.Time, all bool) int {
	dropped := 0
	for _, t := range s.Tenants() {
		g := s.Lookup(t)
		if all || g.NeedsRebuild() {
			dropped += g.Rebuild(cutoff)
		}
	}
	return dropped
}
