package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// Bounds on customer fields.
const (
	MaxMetadataKeys   = 50
	MaxMetadataKeyLen = 40
	MaxMetadataValLen = 500
	MaxSubjects       = 100
	MaxSubjectLen     = 256
)

// TaxStatus hints how taxes apply to a customer.
type TaxStatus string

const (
	TaxStandard      TaxStatus = "standard"       // taxed normally (the default)
	TaxExempt        TaxStatus = "exempt"         // not taxed
	TaxReverseCharge TaxStatus = "reverse_charge" // B2B cross-border: the customer self-assesses VAT
)

// Address is a billing address. Country is ISO 3166-1 alpha-2.
type Address struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	State      string `json:"state,omitempty"`
	Country    string `json:"country,omitempty" doc:"ISO 3166-1 alpha-2, e.g. DE"`
}

// Customer is a billing customer of a tenant. Subjects are the usage
// subject keys whose events belong to it; a subject maps to one customer.
type Customer struct {
	ID         string            `json:"id"`
	ExternalID string            `json:"external_id,omitempty"`
	Name       string            `json:"name"`
	Email      string            `json:"email,omitempty"`
	Currency   string            `json:"currency"`
	Address    Address           `json:"address"`
	TaxID      string            `json:"tax_id,omitempty"`
	TaxStatus  TaxStatus         `json:"tax_status"`
	Timezone   string            `json:"timezone"`
	Metadata   map[string]string `json:"metadata"`
	Subjects   []string          `json:"subjects"`
	ArchivedAt *time.Time        `json:"archived_at,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Location returns the customer's time zone (UTC if it cannot load).
func (c Customer) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// CustomerInput creates a customer; on update (CustomerPatch) nil fields
// are left alone.
type CustomerInput struct {
	ExternalID string            `json:"external_id,omitempty" maxLength:"255"`
	Name       string            `json:"name" minLength:"1" maxLength:"255"`
	Email      string            `json:"email,omitempty"`
	Currency   string            `json:"currency" doc:"ISO 4217 code, e.g. EUR"`
	Address    Address           `json:"address,omitempty"`
	TaxID      string            `json:"tax_id,omitempty"`
	TaxStatus  TaxStatus         `json:"tax_status,omitempty" enum:"standard,exempt,reverse_charge"`
	Timezone   string            `json:"timezone,omitempty" doc:"IANA zone, e.g. Europe/Berlin; UTC when empty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Subjects   []string          `json:"subjects,omitempty" doc:"usage subject keys mapped to this customer"`
}

// CustomerPatch changes some fields of a customer.
type CustomerPatch struct {
	ExternalID *string            `json:"external_id,omitempty"`
	Name       *string            `json:"name,omitempty"`
	Email      *string            `json:"email,omitempty"`
	Currency   *string            `json:"currency,omitempty"`
	Address    *Address           `json:"address,omitempty"`
	TaxID      *string            `json:"tax_id,omitempty"`
	TaxStatus  *TaxStatus         `json:"tax_status,omitempty"`
	Timezone   *string            `json:"timezone,omitempty"`
	Metadata   *map[string]string `json:"metadata,omitempty"`
	Subjects   *[]string          `json:"subjects,omitempty"`
}

func (in *CustomerInput) normalize() {
	in.Name = strings.TrimSpace(in.Name)
	in.Email = strings.TrimSpace(in.Email)
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	in.Address.Country = strings.ToUpper(strings.TrimSpace(in.Address.Country))
	if in.TaxStatus == "" {
		in.TaxStatus = TaxStandard
	}
	if in.Timezone == "" {
		in.Timezone = "UTC"
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	if in.Subjects == nil {
		in.Subjects = []string{}
	}
}

// validate records every problem of in.
func (in CustomerInput) validate() error {
	var v abacus.Validation
	if in.Name == "" {
		v.Add("name", "is required")
	} else if len(in.Name) > 255 {
		v.Add("name", "must be at most 255 characters")
	}
	if len(in.ExternalID) > 255 {
		v.Add("external_id", "must be at most 255 characters")
	}
	if in.Email != "" {
		if a, err := mail.ParseAddress(in.Email); err != nil || a.Address != in.Email {
			v.Add("email", "%q is not an e-mail address such as billing@example.com", in.Email)
		}
	}
	if _, err := money.LookupCurrency(in.Currency); err != nil {
		v.Add("currency", "unknown currency %q; use an ISO 4217 code such as USD or EUR", in.Currency)
	}
	if c := in.Address.Country; c != "" && !ValidCountry(c) {
		v.Add("address.country", "%q is not an ISO 3166-1 alpha-2 country code such as DE or US", c)
	}
	switch in.TaxStatus {
	case TaxStandard, TaxExempt, TaxReverseCharge:
	default:
		v.Add("tax_status", "unknown tax status %q; use standard, exempt or reverse_charge", in.TaxStatus)
	}
	if in.TaxStatus == TaxReverseCharge && in.TaxID == "" {
		v.Add("tax_id", "is required for reverse_charge customers")
	}
	if _, err := time.LoadLocation(in.Timezone); err != nil || in.Timezone == "Local" {
		v.Add("timezone", "%q is not an IANA time zone such as Europe/Berlin", in.Timezone)
	}
	if len(in.Metadata) > MaxMetadataKeys {
		v.Add("metadata", "has %d keys; at most %d are allowed", len(in.Metadata), MaxMetadataKeys)
	}
	for k, val := range in.Metadata {
		if k == "" || len(k) > MaxMetadataKeyLen {
			v.Add("metadata."+k, "keys must be 1 to %d characters", MaxMetadataKeyLen)
		}
		if len(val) > MaxMetadataValLen {
			v.Add("metadata."+k, "values must be at most %d characters", MaxMetadataValLen)
		}
	}
	if len(in.Subjects) > MaxSubjects {
		v.Add("subjects", "has %d subjects; at most %d are allowed", len(in.Subjects), MaxSubjects)
	}
	seen := map[string]bool{}
	for i, sub := range in.Subjects {
		f := fmt.Sprintf("subjects[%d]", i)
		switch {
		case sub == "" || len(sub) > MaxSubjectLen:
			v.Add(f, "must be 1 to %d characters", MaxSubjectLen)
		case seen[sub]:
			v.Add(f, "duplicate subject %q", sub)
		}
		seen[sub] = true
	}
	return v.Err("invalid_customer")
}

// CreateCustomer creates a customer and its subjects. It returns an
// "invalid_customer" error naming every bad field, or a conflict
// "external_id_taken" / "subject_taken" naming the field.
func (s *Service) CreateCustomer(ctx context.Context, in CustomerInput) (Customer, error) {
	var c Customer
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		c, err = s.CreateCustomerIn(ctx, tx, in)
		return err
	})
	if err != nil {
		return Customer{}, err
	}
	return c, nil
}

// CreateCustomerIn creates a customer inside tx, for a module whose own
// change makes one (an end users' organization is its billed customer):
// both commit or neither does. Errors as CreateCustomer.
func (s *Service) CreateCustomerIn(ctx context.Context, tx *db.Tx, in CustomerInput) (Customer, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Customer{}, err
	}
	in.normalize()
	if err := in.validate(); err != nil {
		return Customer{}, err
	}
	return s.insertCustomer(ctx, tx, tenant, in)
}

// insertCustomer stores a validated customer and records customer.created.
func (s *Service) insertCustomer(ctx context.Context, tx *db.Tx, tenant string, in CustomerInput) (Customer, error) {
	now := s.now()
	c := Customer{ID: abacus.NewID("cus"), CreatedAt: now, UpdatedAt: now}
	apply(&c, in)
	if err := claimSubjects(ctx, tx, tenant, c.ID, c.Subjects); err != nil {
		return Customer{}, err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO customers (id, tenant_id, external_id, name, email, currency, address,
		tax_id, tax_status, timezone, metadata, subjects, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		c.ID, tenant, nullString(c.ExternalID), c.Name, c.Email, c.Currency, mustJSON(c.Address), c.TaxID,
		string(c.TaxStatus), c.Timezone, mustJSON(c.Metadata), mustJSON(c.Subjects), db.TimeOf(now), db.TimeOf(now))
	if db.IsUniqueViolation(err) {
		return Customer{}, abacus.Conflict("external_id_taken", "another customer already has external id %q; use a different one", c.ExternalID).
			WithField("external_id", "is already used by another customer")
	}
	if err != nil {
		return Customer{}, fmt.Errorf("inserting customer: %w", err)
	}
	if _, err := CustomerCreated.Record(ctx, tx, tenant, c.ID, now, c); err != nil {
		return Customer{}, err
	}
	return c, nil
}

func apply(c *Customer, in CustomerInput) {
	c.ExternalID, c.Name, c.Email, c.Currency = in.ExternalID, in.Name, in.Email, in.Currency
	c.Address, c.TaxID, c.TaxStatus, c.Timezone = in.Address, in.TaxID, in.TaxStatus, in.Timezone
	c.Metadata, c.Subjects = in.Metadata, in.Subjects
}

// claimSubjects maps subjects to customer id, replacing the customer's
// previous ones. A subject owned by another customer is a conflict.
func claimSubjects(ctx context.Context, tx *db.Tx, tenant, customerID string, subjects []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM customer_subjects WHERE tenant_id = $1 AND customer_id = $2`, tenant, customerID); err != nil {
		return fmt.Errorf("clearing subjects: %w", err)
	}
	for i, sub := range subjects {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT customer_id FROM customer_subjects WHERE tenant_id = $1 AND subject = $2`, tenant, sub).Scan(&owner)
		if err == nil {
			return abacus.Conflict("subject_taken", "subject %q already belongs to customer %s; a subject maps to one customer", sub, owner).
				WithField(fmt.Sprintf("subjects[%d]", i), "already belongs to another customer")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("checking subject: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO customer_subjects (tenant_id, subject, customer_id) VALUES ($1, $2, $3)`,
			tenant, sub, customerID); err != nil {
			if db.IsUniqueViolation(err) { // claimed concurrently
				return abacus.Conflict("subject_taken", "subject %q already belongs to another customer", sub).
					WithField(fmt.Sprintf("subjects[%d]", i), "already belongs to another customer")
			}
			return fmt.Errorf("claiming subject: %w", err)
		}
	}
	return nil
}

const customerCols = `id, external_id, name, email, currency, address, tax_id, tax_status, timezone, metadata, subjects, archived_at, created_at, updated_at`

func scanCustomer(r interface{ Scan(...any) error }) (Customer, error) {
	var c Customer
	var ext sql.NullString
	var addr, meta, subs, tax string
	var archived db.NullTime
	var created, updated db.Time
	if err := r.Scan(&c.ID, &ext, &c.Name, &c.Email, &c.Currency, &addr, &c.TaxID, &tax, &c.Timezone, &meta, &subs,
		&archived, &created, &updated); err != nil {
		return c, err
	}
	c.ExternalID, c.TaxStatus = ext.String, TaxStatus(tax)
	c.ArchivedAt, c.CreatedAt, c.UpdatedAt = archived.Ptr(), created.Time, updated.Time
	if err := errors.Join(json.Unmarshal([]byte(addr), &c.Address), json.Unmarshal([]byte(meta), &c.Metadata),
		json.Unmarshal([]byte(subs), &c.Subjects)); err != nil {
		return c, fmt.Errorf("decoding customer %s: %w", c.ID, err)
	}
	return c, nil
}

// LoadCustomer reads the customer of tenant that ref names through q (a
// *db.DB or a *db.Tx): ref is its id or its external id, the way a plan
// is named by id or key. An id wins over another customer's equal
// external id. It returns "customer_not_found" when there is none.
func LoadCustomer(ctx context.Context, q db.Querier, tenant, ref string) (Customer, error) {
	c, err := scanCustomer(q.QueryRowContext(ctx, `SELECT `+customerCols+` FROM customers WHERE tenant_id = $1 AND (id = $2 OR external_id = $2)
		ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1`, tenant, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return c, abacus.NotFound("customer", ref)
	}
	if err != nil {
		return c, fmt.Errorf("reading customer %s: %w", ref, err)
	}
	return c, nil
}

// CustomerIDByExternalID is the id of tenant's customer whose external id
// is ext, "" when there is none. Risk events name customers by external
// id, each a lookup (risk caches the answers), so the query is kept
// prepared.
func CustomerIDByExternalID(ctx context.Context, d *db.DB, tenant, ext string) (string, error) {
	var id string
	rows, err := d.QueryPrepared(ctx, `SELECT id FROM customers WHERE tenant_id = $1 AND external_id = $2`, tenant, ext)
	err = db.ScanFirst(rows, err, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading customer %s: %w", ext, err)
	}
	return id, nil
}

// LoadCustomers reads the customers with ids of tenant through q in one
// query, by id (billing reads a batch's customers with it). Unknown ids
// are left out.
func LoadCustomers(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string]Customer, error) {
	out := make(map[string]Customer, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenant)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+customerCols+` FROM customers WHERE tenant_id = $1 AND id IN (`+db.Placeholders(2, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading customers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, err
		}
		out[c.ID] = c
	}
	return out, rows.Err()
}

// CustomerFilter turns ref, a customer id or external id given to filter
// a list, into the customer's id. A ref that names no customer of the
// caller's tenant is returned as it is: the filter then matches nothing.
func CustomerFilter(ctx context.Context, q db.Querier, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return "", err
	}
	var id string
	err = q.QueryRowContext(ctx, `SELECT id FROM customers WHERE tenant_id = $1 AND (id = $2 OR external_id = $2)
		ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1`, tenant, ref).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return ref, nil
	}
	if err != nil {
		return "", fmt.Errorf("finding customer %s: %w", ref, err)
	}
	return id, nil
}

// GetCustomer returns the customer ref names (id or external id);
// "customer_not_found" when it does not exist or belongs to another
// tenant.
func (s *Service) GetCustomer(ctx context.Context, ref string) (Customer, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Customer{}, err
	}
	return LoadCustomer(ctx, s.db, tenant, ref)
}

// CustomerBySubject returns the customer that owns usage subject sub, or
// "customer_not_found".
func (s *Service) CustomerBySubject(ctx context.Context, sub string) (Customer, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Customer{}, err
	}
	var id string
	err = s.db.QueryRowContext(ctx, `SELECT customer_id FROM customer_subjects WHERE tenant_id = $1 AND subject = $2`, tenant, sub).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{}, abacus.Errorf(abacus.KindNotFound, "customer_not_found", "no customer owns subject %q", sub)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("finding subject %q: %w", sub, err)
	}
	return LoadCustomer(ctx, s.db, tenant, id)
}

// UpdateCustomer changes the fields set in p of the customer ref names
// (id or external id). Errors are those of CreateCustomer, plus
// "customer_not_found".
func (s *Service) UpdateCustomer(ctx context.Context, ref string, p CustomerPatch) (Customer, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Customer{}, err
	}
	var c Customer
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cur, err := LoadCustomer(ctx, tx, tenant, ref)
		if err != nil {
			return err
		}
		id := cur.ID
		in := CustomerInput{ExternalID: cur.ExternalID, Name: cur.Name, Email: cur.Email, Currency: cur.Currency,
			Address: cur.Address, TaxID: cur.TaxID, TaxStatus: cur.TaxStatus, Timezone: cur.Timezone,
			Metadata: cur.Metadata, Subjects: cur.Subjects}
		setIf(&in.ExternalID, p.ExternalID)
		setIf(&in.Name, p.Name)
		setIf(&in.Email, p.Email)
		setIf(&in.Currency, p.Currency)
		setIf(&in.Address, p.Address)
		setIf(&in.TaxID, p.TaxID)
		setIf(&in.TaxStatus, p.TaxStatus)
		setIf(&in.Timezone, p.Timezone)
		setIf(&in.Metadata, p.Metadata)
		setIf(&in.Subjects, p.Subjects)
		in.normalize()
		if err := in.validate(); err != nil {
			return err
		}
		if in.Currency != cur.Currency {
			if err := s.guardCurrency(ctx, tx, tenant, id, cur.Currency); err != nil {
				return err
			}
		}
		c = cur
		apply(&c, in)
		c.UpdatedAt = s.now()
		if p.Subjects != nil {
			if err := claimSubjects(ctx, tx, tenant, id, c.Subjects); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE customers SET external_id = $3, name = $4, email = $5, currency = $6, address = $7,
			tax_id = $8, tax_status = $9, timezone = $10, metadata = $11, subjects = $12, updated_at = $13
			WHERE tenant_id = $1 AND id = $2`,
			tenant, id, nullString(c.ExternalID), c.Name, c.Email, c.Currency, mustJSON(c.Address), c.TaxID, string(c.TaxStatus),
			c.Timezone, mustJSON(c.Metadata), mustJSON(c.Subjects), db.TimeOf(c.UpdatedAt))
		if db.IsUniqueViolation(err) {
			return abacus.Conflict("external_id_taken", "another customer already has external id %q; use a different one", c.ExternalID).
				WithField("external_id", "is already used by another customer")
		}
		if err != nil {
			return fmt.Errorf("updating customer %s: %w", id, err)
		}
		_, err = CustomerUpdated.Record(ctx, tx, tenant, id, c.UpdatedAt, c)
		return err
	})
	if err != nil {
		return Customer{}, err
	}
	s.changed(tenant, c.ID)
	return c, nil
}

// CurrencyGuard is asked, inside the transaction that changes the
// currency of customer customerID from currency, whether it may; an error
// refuses the change. The subscription module refuses while the customer
// has live subscriptions, billed in that currency.
type CurrencyGuard func(ctx context.Context, tx *db.Tx, tenant, customerID, currency string) error

// GuardCurrency adds g to the guards of currency changes (the catalog
// cannot read the subscriptions of a customer itself: they are a module
// above it).
func (s *Service) GuardCurrency(g CurrencyGuard) {
	s.listenMu.Lock()
	s.guards = append(s.guards, g)
	s.listenMu.Unlock()
}

func (s *Service) guardCurrency(ctx context.Context, tx *db.Tx, tenant, customerID, currency string) error {
	s.listenMu.Lock()
	guards := s.guards
	s.listenMu.Unlock()
	for _, g := range guards {
		if err := g(ctx, tx, tenant, customerID, currency); err != nil {
			return err
		}
	}
	return nil
}

// ArchiveCustomer archives the customer ref names (id or external id): it
// keeps its data and history but can get no new subscriptions. Archiving
// twice is not an error. It returns "customer_not_found".
func (s *Service) ArchiveCustomer(ctx context.Context, ref string) (Customer, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Customer{}, err
	}
	var c Customer
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err = LoadCustomer(ctx, tx, tenant, ref)
		if err != nil || c.ArchivedAt != nil {
			return err
		}
		now := s.now()
		c.ArchivedAt, c.UpdatedAt = &now, now
		if _, err := tx.ExecContext(ctx, `UPDATE customers SET archived_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`,
			tenant, c.ID, db.TimeOf(now)); err != nil {
			return fmt.Errorf("archiving customer %s: %w", c.ID, err)
		}
		_, err = CustomerArchived.Record(ctx, tx, tenant, c.ID, now, c)
		return err
	})
	if err != nil {
		return Customer{}, err
	}
	s.changed(tenant, c.ID)
	return c, nil
}

// CustomerQuery narrows a list of customers. Search matches name, e-mail
// or external id case-insensitively; ExternalID matches exactly.
type CustomerQuery struct {
	Search     string
	ExternalID string
}

// ListCustomers returns a page of the customers q selects, ordered by id.
func (s *Service) ListCustomers(ctx context.Context, cq CustomerQuery, pg Page) (List[Customer], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return List[Customer]{}, err
	}
	q := `SELECT ` + customerCols + ` FROM customers WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, pg.Cursor}
	if search := strings.TrimSpace(cq.Search); search != "" {
		args = append(args, "%"+likeEscape.Replace(strings.ToLower(search))+"%")
		n := itoa(len(args))
		q += ` AND (lower(name) LIKE $` + n + ` ESCAPE '\' OR lower(email) LIKE $` + n + ` ESCAPE '\' OR lower(coalesce(external_id, '')) LIKE $` + n + ` ESCAPE '\')`
	}
	if cq.ExternalID != "" {
		args = append(args, cq.ExternalID)
		q += ` AND external_id = $` + itoa(len(args))
	}
	q += ` ORDER BY id LIMIT ` + itoa(pg.limit()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return List[Customer]{}, fmt.Errorf("listing customers: %w", err)
	}
	defer rows.Close()
	var out []Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return List[Customer]{}, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return List[Customer]{}, fmt.Errorf("listing customers: %w", err)
	}
	return page(out, pg.limit(), func(c Customer) string { return c.ID }), nil
}

var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("catalog: marshalling %T: %v", v, err)) // only plain data types are marshalled
	}
	return string(b)
}
