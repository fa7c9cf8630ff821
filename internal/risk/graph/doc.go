// Package graph is the risk module's link graph: the entities a tenant's
// events name (customers, end users, devices, cards, e-mails, phones, IPs,
// shipping addresses) are nodes, and an event that names two of them links
// them. It answers, in microseconds, how many customers are linked to an
// event's entities and how many of those are labelled fraud, and lists a
// node's k-hop neighbourhood for a reviewer.
//
// One Graph holds one tenant; Graphs holds every tenant's.
//
// # Layout (memory-lean)
//
// A node is an int32 index. Its key is interned once in a byte arena,
// found through an open-addressing table of int32 indices; the per-node
// state is one record (union-find parent or negative size, customers and
// fraud-labelled customers per component, first half-edge, degree, key
// offset, length and hash, kind, label). An undirected edge is one record
// of two half-edges (target, next half-edge of the same node: adjacency
// lists as linked lists, no slice per node) and a last-seen time in
// seconds; a second open-addressing table on the ordered pair keeps one
// edge per pair. Records and keys are stored in blocks (blocks.go), so
// the graph grows without copying. Nothing is a map of maps and no node
// holds a pointer, so the garbage collector scans a few block lists only.
//
// # Components
//
// Components are kept incrementally by union-find (union by size, path
// halving on writes; readers never write, so reads run in parallel under a
// read lock). An edge is never removed in place: Rebuild starts a fresh
// graph from the edges still wanted (seen since a cut-off, and at most the
// budget's newest edges), which is how expiry, budget and compaction all
// happen. While a rebuild runs, readers read the old graph and writers queue
// their changes, which are applied to the new graph before it replaces the
// old one.
//
// # Budget
//
// Options.MaxEdges bounds a tenant's edges (nodes follow: a node exists
// because an edge or a label names it, or an event named it alone). When an
// insert takes the graph past MaxEdges, NeedsRebuild reports it; the owner
// rebuilds, and the rebuild keeps the newest MaxEdges*7/8 edges (by last
// seen) and drops the rest, together with nodes left with no edge and no
// label. A graph therefore stays under about MaxEdges edges between
// rebuilds; the memory that takes is measured in bench_test.go and stated
// in docs/risk.md.
package graph
