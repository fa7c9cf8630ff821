package dunning

import (
	"time"

	"github.com/shopspring/decimal"
)

// Examples are the values the API reference shows for dunning's bodies.
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	next := at.Add(3 * 24 * time.Hour)
	seven, two := 7, 2
	act := Cancel
	return []any{
		Defaults(),
		PlanOverride{RetryDays: []int{1, 3, 7, 14}, MaxAttempts: &seven, GraceDays: &two, FinalAction: &act},
		Run{ID: "dun_01jbx9c2d3e4f5g6h7j8k9m0n1", InvoiceID: "inv_01jbx6r1c8e2g4j6l8n0q2s4uw", InvoiceNumber: "INV-2026-0042",
			CustomerID: "cus_01jbx5m9a7c9e1g3i5k7m9o1qs", SubscriptionID: "sub_01jbx5q2w4e6r8t0y2u4i6o8p0", Amount: decimal.RequireFromString("119.00"),
			Currency: "EUR", Status: StatusActive, Policy: Defaults().RetryPolicy, FirstFailedAt: at, Attempts: 1, NextStep: StepRetry, NextAt: &next,
			DeclineCode: "insufficient_funds", CreatedAt: at, UpdatedAt: at},
	}
}
