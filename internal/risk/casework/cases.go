package casework

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/risk"
)

// Case is a review decision waiting for a person:
//
//	open ──assign/comment──▶ open ──resolve(label)──▶ resolved
//
// Resolving labels the customer (fraud or legitimate), which the graph and
// the score's training take in.
type Case struct {
	ID         string        `json:"id"`
	DecisionID string        `json:"decision_id"`
	EventID    string        `json:"event_id"`
	CustomerID string        `json:"customer_id,omitempty"`
	Status     string        `json:"status" enum:"open,resolved"`
	Assignee   string        `json:"assignee,omitempty"`
	Resolution string        `json:"resolution,omitempty" enum:"fraud,legitimate" doc:"the label given on resolving"`
	Comments   []CaseComment `json:"comments,omitempty" doc:"on GET of one case"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
	ResolvedAt *time.Time    `json:"resolved_at,omitempty"`
}

// CaseComment is a note on a case.
type CaseComment struct {
	ID        string    `json:"id"`
	Author    string    `json:"author" doc:"the principal who wrote it"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// AssignInput assigns a case.
type AssignInput struct {
	Assignee string `json:"assignee" maxLength:"200" doc:"who reviews it (e.g. an e-mail); empty unassigns"`
}

// CommentInput comments on a case.
type CommentInput struct {
	Body string `json:"body" minLength:"1" maxLength:"5000"`
}

// CaseFilter filters the case queue.
type CaseFilter struct {
	Status     string `query:"status" enum:"open,resolved" doc:"only cases in this status"`
	Assignee   string `query:"assignee" doc:"only cases assigned to this person; \"none\" for unassigned"`
	CustomerID string `query:"customer_id" doc:"only this customer's cases"`
}

// onDecided is the risk service's decision hook, in the transaction that
// stores the decisions of events: every review decision opens a case, and
// a dispute event whose properties.status is "lost" (a lost chargeback,
// sent by the tenant or fed from the payments module) labels its customer
// fraud.
func (s *Service) onDecided(ctx context.Context, tx *db.Tx, tenant string, ds []*risk.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	now := db.TimeOf(s.clock.Now())
	type lost struct{ event, customer string }
	var losts []lost
	for _, d := range ds {
		if ev := d.StoredEvent(); ev != nil && ev.Type == risk.TypeDispute && ev.Properties["status"] == "lost" && ev.CustomerID != "" {
			losts = append(losts, lost{ev.ID, ev.CustomerID})
		}
	}
	for _, l := range losts {
		if err := s.labelLost(ctx, tx, tenant, l.customer, "lost dispute (risk event "+l.event+")"); err != nil {
			return err
		}
	}
	for _, d := range ds {
		if d.Decision != "review" || d.EventID == "" {
			continue
		}
		customer := ""
		if ev := d.StoredEvent(); ev != nil {
			customer = ev.CustomerID
		}
		// Prepared once on the writer: a review decision must not parse SQL
		// inside every group commit.
		_, err := tx.ExecPrepared(ctx, `INSERT INTO risk_cases (tenant_id, id, decision_id, event_id, customer_id, status, assignee, resolution, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'open', '', '', $6, $7) ON CONFLICT (tenant_id, decision_id) DO NOTHING`,
			tenant, abacus.NewID("rcase"), d.ID, d.EventID, customer, now, now)
		if err != nil {
			return err
		}
	}
	return nil
}

const caseColumns = `id, decision_id, event_id, customer_id, status, assignee, resolution, created_at, updated_at, resolved_at`

func scanCase(row interface{ Scan(...any) error }) (Case, error) {
	var c Case
	var created, updated db.Time
	var resolved db.NullTime
	err := row.Scan(&c.ID, &c.DecisionID, &c.EventID, &c.CustomerID, &c.Status, &c.Assignee, &c.Resolution, &created, &updated, &resolved)
	c.CreatedAt, c.UpdatedAt, c.ResolvedAt = created.Time, updated.Time, resolved.Ptr()
	return c, err
}

// ListCases lists the queue, oldest first.
func (s *Service) ListCases(ctx context.Context, f CaseFilter, limit int, cursor string) (abacus.List[Case], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Case]{}, err
	}
	if err := s.flushed(ctx); err != nil {
		return abacus.List[Case]{}, err
	}
	if f.Status != "" && f.Status != "open" && f.Status != "resolved" {
		return abacus.List[Case]{}, abacus.Invalid("invalid_case_filter", "status must be open or resolved").WithField("query.status", "must be open or resolved")
	}
	assignee := f.Assignee
	if assignee == "none" {
		assignee = ""
	}
	limit = pageSize(limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+caseColumns+` FROM risk_cases
		WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR status = $4) AND ($5 = 0 OR assignee = $6) AND ($7 = '' OR customer_id = $8)
		ORDER BY id LIMIT $9`, tenant, cursor, f.Status, f.Status, boolInt(f.Assignee != ""), assignee, f.CustomerID, f.CustomerID, limit+1)
	if err != nil {
		return abacus.List[Case]{}, err
	}
	defer rows.Close()
	var items []Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return abacus.List[Case]{}, err
		}
		items = append(items, c)
	}
	return page(items, rows.Err(), limit, func(c Case) string { return c.ID })
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GetCase answers a case with its comments.
func (s *Service) GetCase(ctx context.Context, id string) (Case, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Case{}, err
	}
	if err := s.flushed(ctx); err != nil {
		return Case{}, err
	}
	c, err := scanCase(s.db.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM risk_cases WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if err == sql.ErrNoRows {
		return Case{}, abacus.NotFound("risk_case", id)
	}
	if err != nil {
		return Case{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, author, body, created_at FROM risk_case_comments WHERE tenant_id = $1 AND case_id = $2 ORDER BY id`, tenant, id)
	if err != nil {
		return Case{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var cm CaseComment
		var at db.Time
		if err := rows.Scan(&cm.ID, &cm.Author, &cm.Body, &at); err != nil {
			return Case{}, err
		}
		cm.CreatedAt = at.Time
		c.Comments = append(c.Comments, cm)
	}
	return c, rows.Err()
}

// AssignCase assigns an open case ("" unassigns).
func (s *Service) AssignCase(ctx context.Context, id, assignee string) (Case, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Case{}, err
	}
	if len(assignee) > 200 {
		return Case{}, abacus.Invalid("invalid_case", "assignee is too long").WithField("assignee", "must be at most 200 characters")
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := s.lockCase(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if c.Status != "open" {
			return abacus.Conflict("case_resolved", "case %s is resolved", id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE risk_cases SET assignee = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
			assignee, db.TimeOf(s.clock.Now()), tenant, id)
		return err
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

// CommentCase adds a comment to a case (open or resolved).
func (s *Service) CommentCase(ctx context.Context, id, body string) (Case, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Case{}, err
	}
	body = strings.TrimSpace(body)
	if body == "" || len(body) > 5000 {
		return Case{}, abacus.Invalid("invalid_comment", "body must be 1 to 5000 characters").WithField("body", "must be 1 to 5000 characters")
	}
	author := ""
	if p := abacus.PrincipalFrom(ctx); p != nil {
		author = p.Kind + ":" + p.ID
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.lockCase(ctx, tx, tenant, id); err != nil {
			return err
		}
		now := db.TimeOf(s.clock.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO risk_case_comments (tenant_id, id, case_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			tenant, abacus.NewID("rcom"), id, author, body, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE risk_cases SET updated_at = $1 WHERE tenant_id = $2 AND id = $3`, now, tenant, id)
		return err
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

// ResolveInput resolves a case.
type ResolveInput struct {
	Label string `json:"label" enum:"fraud,legitimate" doc:"what the customer is; labels the customer"`
	Note  string `json:"note,omitempty" maxLength:"1000"`
}

// ResolveCase resolves an open case with a label, which labels its
// customer (source review).
func (s *Service) ResolveCase(ctx context.Context, id string, in ResolveInput) (Case, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Case{}, err
	}
	if _, ok := parseLabel(in.Label); !ok {
		return Case{}, abacus.Invalid("invalid_resolution", "label must be fraud or legitimate").WithField("label", "must be fraud or legitimate")
	}
	if len(in.Note) > 1000 {
		return Case{}, abacus.Invalid("invalid_resolution", "note is too long").WithField("note", "must be at most 1000 characters")
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err := s.lockCase(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if c.Status != "open" {
			return abacus.Conflict("case_resolved", "case %s is already resolved", id)
		}
		now := db.TimeOf(s.clock.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE risk_cases SET status = 'resolved', resolution = $1, updated_at = $2, resolved_at = $3 WHERE tenant_id = $4 AND id = $5`,
			in.Label, now, now, tenant, id); err != nil {
			return err
		}
		if c.CustomerID != "" {
			_, err = s.label(ctx, tx, tenant, c.CustomerID, in.Label, SourceReview, in.Note)
		}
		return err
	})
	if err != nil {
		return Case{}, err
	}
	return s.GetCase(ctx, id)
}

func (s *Service) lockCase(ctx context.Context, tx *db.Tx, tenant, id string) (Case, error) {
	c, err := scanCase(tx.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM risk_cases WHERE tenant_id = $1 AND id = $2`+tx.LockClause(" FOR UPDATE"), tenant, id))
	if err == sql.ErrNoRows {
		return Case{}, abacus.NotFound("risk_case", id)
	}
	return c, err
}
