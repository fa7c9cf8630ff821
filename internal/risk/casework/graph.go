package casework

import (
	"context"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/graph"
)

// entities are the graph nodes an event names: its customer (the
// tenant's own id), end user, device, card fingerprint, e-mail, phone, IP
// and shipping address (the last five as the keyed hashes events store).
func entities(ev *risk.Event) []graph.Entity {
	return []graph.Entity{
		{Kind: graph.Customer, Key: ev.CustomerID},
		{Kind: graph.EndUser, Key: ev.EndUserID},
		{Kind: graph.Device, Key: ev.DeviceID},
		{Kind: graph.Card, Key: ev.CardFingerprint},
		{Kind: graph.Email, Key: ev.Email},
		{Kind: graph.Phone, Key: ev.Phone},
		{Kind: graph.IP, Key: ev.IP},
		{Kind: graph.Address, Key: ev.ShippingAddress},
	}
}

// graphPort is casework's risk.Graph.
type graphPort struct{ s *Service }

func (p graphPort) Features(_ context.Context, tenant string, ev *risk.Event) (risk.GraphValues, error) {
	g := p.s.graphs.Lookup(tenant)
	if g == nil {
		n := 0
		for _, e := range entities(ev) {
			if e.Key != "" {
				n++
			}
		}
		return risk.GraphValues{ComponentSize: n}, nil
	}
	f := g.Features(entities(ev)...)
	return risk.GraphValues{LinkedAccounts: f.LinkedAccounts, LinkedLabelledFraud: f.LinkedLabelledFraud, ComponentSize: f.ComponentSize}, nil
}

func (p graphPort) Observe(tenant string, evs ...*risk.Event) {
	links := make([]graph.Links, len(evs))
	for i, ev := range evs {
		links[i] = graph.Links{At: ev.Time, Entities: entities(ev)}
	}
	p.s.graphs.Tenant(tenant).LinkAll(links)
}

// GraphNode is one entity of a customer's neighbourhood.
type GraphNode struct {
	ID    string `json:"id" doc:"the node's id in this answer (n0 is the customer)"`
	Kind  string `json:"kind" enum:"customer,end_user,device,card,email,phone,ip,address"`
	Key   string `json:"key" doc:"the identifier as events store it: the tenant's id for customers and end users, the keyed hash (h1_…) for personal identifiers"`
	Label string `json:"label,omitempty" enum:"fraud,legitimate" doc:"a customer's label"`
	Hops  int    `json:"hops" doc:"distance from the customer"`
}

// GraphEdge links two nodes: an event named both.
type GraphEdge struct {
	From     string    `json:"from"`
	To       string    `json:"to"`
	LastSeen time.Time `json:"last_seen" doc:"time of the latest event that linked them"`
}

// CustomerGraph is a customer's k-hop neighbourhood in the link graph.
type CustomerGraph struct {
	CustomerID string           `json:"customer_id"`
	Hops       int              `json:"hops"`
	Nodes      []GraphNode      `json:"nodes"`
	Edges      []GraphEdge      `json:"edges"`
	Truncated  bool             `json:"truncated" doc:"true when the node limit stopped the walk before hops"`
	Features   risk.GraphValues `json:"features" doc:"the customer's graph.* variables now"`
}

// CustomerGraph answers a customer's neighbourhood: nodes up to hops
// away (1–6), at most limit of them (1–500), nearest first. A customer no
// event or label named is not found.
func (s *Service) CustomerGraph(ctx context.Context, customerID string, hops, limit int) (CustomerGraph, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CustomerGraph{}, err
	}
	if hops == 0 {
		hops = 2
	}
	if limit == 0 {
		limit = 100
	}
	var v abacus.Validation
	if hops < 1 || hops > 6 {
		v.Add("query.hops", "must be between 1 and 6, got %d", hops)
	}
	if limit < 1 || limit > 500 {
		v.Add("query.limit", "must be between 1 and 500, got %d", limit)
	}
	if err := v.Err("invalid_graph_query"); err != nil {
		return CustomerGraph{}, err
	}
	g := s.graphs.Lookup(tenant)
	if g == nil {
		return CustomerGraph{}, abacus.NotFound("risk_customer", customerID)
	}
	start := graph.Entity{Kind: graph.Customer, Key: customerID}
	n, ok := g.Neighbourhood(start, hops, limit)
	if !ok {
		return CustomerGraph{}, abacus.NotFound("risk_customer", customerID)
	}
	f := g.Features(start)
	out := CustomerGraph{CustomerID: customerID, Hops: hops, Truncated: n.Truncated,
		Nodes: make([]GraphNode, len(n.Nodes)), Edges: make([]GraphEdge, len(n.Edges)),
		Features: risk.GraphValues{LinkedAccounts: f.LinkedAccounts, LinkedLabelledFraud: f.LinkedLabelledFraud, ComponentSize: f.ComponentSize}}
	for i, nd := range n.Nodes {
		out.Nodes[i] = GraphNode{ID: fmt.Sprint("n", i), Kind: nd.Kind.String(), Key: nd.Key, Label: nd.Label.String(), Hops: nd.Hops}
	}
	for i, e := range n.Edges {
		out.Edges[i] = GraphEdge{From: fmt.Sprint("n", e.From), To: fmt.Sprint("n", e.To), LastSeen: e.LastSeen}
	}
	return out, nil
}
