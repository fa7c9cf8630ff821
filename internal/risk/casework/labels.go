package casework

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/risk/graph"
)

// Where a label came from (Label.Source).
const (
	SourceStaff   = "staff"
	SourceDispute = "dispute" // a lost chargeback
	SourceReview  = "review"  // a resolved review case
)

// Label is what is known of a customer: fraud or legitimate.
type Label struct {
	CustomerID string    `json:"customer_id" doc:"the tenant's own customer id, as risk events carry it"`
	Label      string    `json:"label" enum:"fraud,legitimate"`
	Source     string    `json:"source" enum:"staff,dispute,review"`
	Note       string    `json:"note"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// LabelInput labels a customer.
type LabelInput struct {
	CustomerID string `json:"customer_id" minLength:"1" maxLength:"200" doc:"the tenant's own customer id, as risk events carry it"`
	Label      string `json:"label" enum:"fraud,legitimate"`
	Note       string `json:"note,omitempty" maxLength:"1000"`
}

func parseLabel(s string) (graph.Label, bool) {
	switch s {
	case "fraud":
		return graph.Fraud, true
	case "legitimate":
		return graph.Legitimate, true
	}
	return graph.Unlabelled, false
}

// SetLabel labels a customer as staff; the graph counts it at once
// (graph.linked_labelled_fraud of every linked customer).
func (s *Service) SetLabel(ctx context.Context, in LabelInput) (Label, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Label{}, err
	}
	var v abacus.Validation
	in.CustomerID = strings.TrimSpace(in.CustomerID)
	if in.CustomerID == "" || len(in.CustomerID) > 200 {
		v.Add("customer_id", "must be 1 to 200 characters")
	}
	if _, ok := parseLabel(in.Label); !ok {
		v.Add("label", "must be fraud or legitimate, got %q", in.Label)
	}
	if len(in.Note) > 1000 {
		v.Add("note", "must be at most 1000 characters")
	}
	if err := v.Err("invalid_label"); err != nil {
		return Label{}, err
	}
	var out Label
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		out, err = s.label(ctx, tx, tenant, in.CustomerID, in.Label, SourceStaff, in.Note)
		return err
	})
	return out, err
}

// LabelLostDispute labels a customer fraud because a chargeback was lost
// (for a caller outside the risk events, e.g. the payments module's
// dispute outcome); a label staff gave stays.
func (s *Service) LabelLostDispute(ctx context.Context, tenant, customerID, note string) error {
	if customerID == "" {
		return nil
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return s.labelLost(ctx, tx, tenant, customerID, note) })
}

// labelLost labels customerID fraud (source dispute) in tx unless staff
// labelled it.
func (s *Service) labelLost(ctx context.Context, tx *db.Tx, tenant, customerID, note string) error {
	var source string
	err := tx.QueryRowContext(ctx, `SELECT source FROM risk_labels WHERE tenant_id = $1 AND customer_id = $2`, tenant, customerID).Scan(&source)
	if err == nil && source == SourceStaff {
		return nil
	}
	if err != nil && err != sql.ErrNoRows {
		return err
	}
	_, err = s.label(ctx, tx, tenant, customerID, "fraud", SourceDispute, note)
	return err
}

// label stores a label in tx and applies it to the graph after commit.
func (s *Service) label(ctx context.Context, tx *db.Tx, tenant, customerID, label, source, note string) (Label, error) {
	now := s.clock.Now()
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_labels (tenant_id, customer_id, label, source, note, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, customer_id) DO UPDATE SET label = excluded.label, source = excluded.source,
			note = excluded.note, updated_at = excluded.updated_at`,
		tenant, customerID, label, source, note, db.TimeOf(now), db.TimeOf(now))
	if err != nil {
		return Label{}, err
	}
	var out Label
	var created, updated db.Time
	err = tx.QueryRowContext(ctx, `SELECT customer_id, label, source, note, created_at, updated_at FROM risk_labels
		WHERE tenant_id = $1 AND customer_id = $2`, tenant, customerID).
		Scan(&out.CustomerID, &out.Label, &out.Source, &out.Note, &created, &updated)
	if err != nil {
		return Label{}, err
	}
	out.CreatedAt, out.UpdatedAt = created.Time, updated.Time
	l, _ := parseLabel(label)
	tx.AfterCommit(func() { s.graphs.Tenant(tenant).SetLabel(customerID, l) })
	return out, nil
}

// ListLabels lists the tenant's labels by customer id, optionally one
// label only.
func (s *Service) ListLabels(ctx context.Context, label string, limit int, cursor string) (abacus.List[Label], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Label]{}, err
	}
	if err := s.flushed(ctx); err != nil {
		return abacus.List[Label]{}, err
	}
	limit = pageSize(limit)
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id, label, source, note, created_at, updated_at FROM risk_labels
		WHERE tenant_id = $1 AND customer_id > $2 AND ($3 = '' OR label = $4) ORDER BY customer_id LIMIT $5`,
		tenant, cursor, label, label, limit+1)
	if err != nil {
		return abacus.List[Label]{}, err
	}
	defer rows.Close()
	var items []Label
	for rows.Next() {
		var l Label
		var created, updated db.Time
		if err := rows.Scan(&l.CustomerID, &l.Label, &l.Source, &l.Note, &created, &updated); err != nil {
			return abacus.List[Label]{}, err
		}
		l.CreatedAt, l.UpdatedAt = created.Time, updated.Time
		items = append(items, l)
	}
	return page(items, rows.Err(), limit, func(l Label) string { return l.CustomerID })
}

// loadLabels applies every label updated at or after since (every tenant)
// to the graphs and returns the newest update time read.
func (s *Service) loadLabels(ctx context.Context, since time.Time) (time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant_id, customer_id, label, updated_at FROM risk_labels WHERE updated_at >= $1`, db.TimeOf(since))
	if err != nil {
		return since, err
	}
	defer rows.Close()
	next := since
	for rows.Next() {
		var tenant, customer, label string
		var at db.Time
		if err := rows.Scan(&tenant, &customer, &label, &at); err != nil {
			return since, err
		}
		l, _ := parseLabel(label)
		s.graphs.Tenant(tenant).SetLabel(customer, l)
		if at.Time.After(next) {
			next = at.Time
		}
	}
	return next, rows.Err()
}

func pageSize(limit int) int {
	if limit <= 0 {
		return 20
	}
	return min(limit, 100)
}

// page cuts items, read with one more than limit, to a page whose cursor
// is the key of its last item when more follow.
func page[T any](items []T, err error, limit int, key func(T) string) (abacus.List[T], error) {
	if err != nil {
		return abacus.List[T]{}, err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = key(items[limit-1])
	}
	return abacus.ListOf(items, next), nil
}
