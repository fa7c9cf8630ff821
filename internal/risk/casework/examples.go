package casework

import (
	"time"

	"github.com/abacusbilling/abacus/internal/risk"
)

// Examples are the values the API reference shows for casework's bodies
// (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)
	exp := at.Add(30 * 24 * time.Hour)
	return []any{
		LabelInput{CustomerID: "cust-1042", Label: "fraud", Note: "chargeback 4837, card testing"},
		Label{CustomerID: "cust-1042", Label: "fraud", Source: SourceStaff, Note: "chargeback 4837, card testing", CreatedAt: at, UpdatedAt: at},
		CustomerGraph{CustomerID: "cust-1042", Hops: 2,
			Nodes: []GraphNode{{ID: "n0", Kind: "customer", Key: "cust-1042", Label: "fraud"},
				{ID: "n1", Kind: "device", Key: "h1_Jq3u0Qy4m2x9Vt1bW8sK5dLr", Hops: 1},
				{ID: "n2", Kind: "customer", Key: "cust-2210", Hops: 2}},
			Edges:    []GraphEdge{{From: "n0", To: "n1", LastSeen: at}, {From: "n1", To: "n2", LastSeen: at}},
			Features: risk.GraphValues{LinkedAccounts: 1, ComponentSize: 3}},
		ListInput{Name: "blocked_devices", Action: "block", Description: "devices seen in card testing"},
		List{ID: "rlist_01jdx7k2q9m4r8t6v3w5y0z1ab", Name: "blocked_devices", Action: "block", Description: "devices seen in card testing", CreatedAt: at},
		ListEntryInput{Kind: "device_id", Value: "dev-9f2c", Note: "card testing 2026-12-01", ExpiresAt: &exp},
		ListEntry{ID: "rle_01jdx7m0d4f6h8j0k2m4n6p8qr", ListID: "rlist_01jdx7k2q9m4r8t6v3w5y0z1ab", Kind: "device_id",
			Value: "h1_Jq3u0Qy4m2x9Vt1bW8sK5dLr", Note: "card testing 2026-12-01", ExpiresAt: &exp, CreatedAt: at},
		Case{ID: "rcase_01jdx7n3c1e3g5i7k9m1o3q5st", DecisionID: "rdec_01jdx7n3b0d2f4h6j8l0n2p4rt", EventID: "order-77",
			CustomerID: "cust-1042", Status: "open", Assignee: "ana@example.com", CreatedAt: at, UpdatedAt: at,
			Comments: []CaseComment{{ID: "rcom_01jdx7p5e7g9i1k3m5o7q9s1uv", Author: "user:usr_01jd", Body: "new device and a password reset an hour ago", CreatedAt: at}}},
		AssignInput{Assignee: "ana@example.com"},
		CommentInput{Body: "new device and a password reset an hour ago"},
		ResolveInput{Label: "legitimate", Note: "customer confirmed by phone"},
		ModelInfo{Version: 3, Kind: "logistic", Examples: 412, Positives: 37,
			Features: []string{"counters.cards_per_device_1h", "graph.linked_labelled_fraud"}, Weights: []float64{1.21, 0.87}, CreatedAt: at},
	}
}
