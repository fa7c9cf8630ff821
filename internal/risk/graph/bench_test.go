package graph

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmark graph: 250,000 customers in households of four (one IP per
// household), each with an e-mail, devices and cards shared by neighbouring
// customers (five customers on four devices), and 1% of events crossing to a
// random device: about 1,000,000 entities and 1,000,000 events. Customer
// keys look like Abacus ids (30 bytes); the other keys are 22-byte keyed
// hashes, as the risk module stores personal identifiers.
const benchCustomers = 250_000

type benchData struct {
	events [][]Entity
	custs  []Entity
}

var (
	benchOnce sync.Once
	bench     benchData
	benchG    *Graph
)

func hashKey(kind byte, i int) string {
	var b [16]byte
	b[0] = kind
	binary.LittleEndian.PutUint64(b[1:], mix(uint64(i)+uint64(kind)<<40))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func benchEvents() benchData {
	rng := rand.New(rand.NewPCG(1, 2))
	d := benchData{custs: make([]Entity, benchCustomers)}
	for i := range benchCustomers {
		d.custs[i] = Entity{Customer, fmt.Sprintf("cus_01jd%022d", i)}
	}
	for round := range 4 {
		for i := range benchCustomers {
			dv := i * 4 / 5
			if round == 3 && i%25 == 0 {
				dv = rng.IntN(benchCustomers * 4 / 5)
			}
			d.events = append(d.events, []Entity{
				d.custs[i],
				{Email, hashKey('e', i)},
				{Device, hashKey('d', dv)},
				{Card, hashKey('c', i*4/5)},
				{IP, hashKey('i', i/4)},
			})
		}
	}
	return d
}

func build(d benchData) *Graph {
	g := New(Options{})
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, ev := range d.events {
		g.Link(at.Add(time.Duration(i)*time.Millisecond), ev...)
	}
	for i := 0; i < benchCustomers; i += 1000 {
		g.SetLabel(d.custs[i].Key, Fraud)
	}
	return g
}

func benchGraph(b *testing.B) (*Graph, benchData) {
	benchOnce.Do(func() {
		bench = benchEvents()
		benchG = build(bench)
	})
	return benchG, bench
}

// cpuTime is this process's user+system CPU time: on a machine shared
// with other work, CPU per op is steadier than wall time per op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp reports the CPU time per op since start.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBuild1M builds the whole graph per iteration (run with
// -benchtime=1x) and reports its memory per entity: the slices' own
// accounting and the live heap it adds.
func BenchmarkBuild1M(b *testing.B) {
	_, d := benchGraph(b)
	var g *Graph
	before := heapInUse()
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		g = build(d)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N*len(d.events)), "cpu-ns/event")
	after := heapInUse()
	s := g.Stats()
	b.ReportMetric(float64(s.Nodes), "entities")
	b.ReportMetric(float64(s.Edges), "edges")
	b.ReportMetric(float64(s.Bytes)/float64(s.Nodes), "B/entity")
	b.ReportMetric(float64(after-before)/float64(s.Nodes), "heapB/entity")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(d.events)), "ns/event")
	runtime.KeepAlive(g)
}

// BenchmarkFeatures1M answers graph.* for an event naming a customer, a
// device and an IP.
func BenchmarkFeatures1M(b *testing.B) {
	g, d := benchGraph(b)
	rng := rand.New(rand.NewPCG(3, 4))
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		ev := d.events[rng.IntN(len(d.events))]
		g.Features(ev[0], ev[2], ev[4])
	}
	cpuPerOp(b, start)
}

// BenchmarkFeaturesParallel1M is the same from every core at once.
func BenchmarkFeaturesParallel1M(b *testing.B) {
	g, d := benchGraph(b)
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 4))
		for pb.Next() {
			ev := d.events[rng.IntN(len(d.events))]
			g.Features(ev[0], ev[2], ev[4])
		}
	})
}

// BenchmarkNeighbourhood1M walks 2 hops from a customer, at most 200 nodes.
func BenchmarkNeighbourhood1M(b *testing.B) {
	g, d := benchGraph(b)
	rng := rand.New(rand.NewPCG(5, 6))
	nodes := 0
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		n, _ := g.Neighbourhood(d.custs[rng.IntN(len(d.custs))], 2, 200)
		nodes += len(n.Nodes)
	}
	cpuPerOp(b, start)
	b.ReportMetric(float64(nodes)/float64(b.N), "nodes/op")
}

// BenchmarkLink1M links an event into the 1M graph (new e-mails, so each
// adds a node and an edge).
func BenchmarkLink1M(b *testing.B) {
	g, d := benchGraph(b)
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	emails := make([]Entity, b.N)
	for i := range emails {
		emails[i] = Entity{Email, hashKey('x', i)}
	}
	b.ResetTimer()
	start := cpuTime()
	for i := range b.N {
		ev := d.events[i%len(d.events)]
		g.Link(at, ev[0], emails[i], ev[2], ev[4])
	}
	cpuPerOp(b, start)
}

// BenchmarkRebuild1M rebuilds the 1M graph keeping every edge.
func BenchmarkRebuild1M(b *testing.B) {
	_, d := benchGraph(b)
	g := build(d)
	b.ResetTimer()
	for range b.N {
		g.Rebuild(time.Time{})
	}
}

// BenchmarkBaselineMap1M is the same run's baseline: the obvious layout (a
// Go map from entity to a map of neighbours, components by BFS) built from
// the same events, its heap per entity, and one map lookup per op.
func BenchmarkBaselineMap1M(b *testing.B) {
	_, d := benchGraph(b)
	before := heapInUse()
	adj := map[Entity]map[Entity]struct{}{}
	for _, ev := range d.events {
		for _, e := range ev {
			if adj[e] == nil {
				adj[e] = map[Entity]struct{}{}
			}
		}
		for _, e := range ev[1:] {
			adj[ev[0]][e] = struct{}{}
			adj[e][ev[0]] = struct{}{}
		}
	}
	after := heapInUse()
	rng := rand.New(rand.NewPCG(3, 4))
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		_ = adj[d.custs[rng.IntN(len(d.custs))]]
	}
	b.StopTimer()
	cpuPerOp(b, start)
	b.ReportMetric(float64(after-before)/float64(len(adj)), "heapB/entity")
	runtime.KeepAlive(adj)
}

// BenchmarkLinkGrowth links 700,000 events of three new entities each
// into an empty graph (2.1M entities: the tables grow many times) and
// reports the slowest single Link, which holds the write lock and so
// stalls every decision (run with -benchtime=1x).
func BenchmarkLinkGrowth(b *testing.B) {
	now := time.Now()
	keys := make([][3]string, 700_000)
	for i := range keys {
		keys[i] = [3]string{fmt.Sprint("c", i), fmt.Sprint("d", i), fmt.Sprint("k", i)}
	}
	var worst time.Duration
	b.ResetTimer()
	for range b.N {
		g := New(Options{})
		for _, k := range keys {
			s := time.Now()
			g.Link(now, Entity{Kind: Customer, Key: k[0]}, Entity{Kind: Device, Key: k[1]}, Entity{Kind: Card, Key: k[2]})
			worst = max(worst, time.Since(s))
		}
	}
	b.ReportMetric(float64(worst.Nanoseconds()), "worst-ns/link")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/link")
}
