package casework

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/risk"
)

// List is an allow, block or watch list of identifiers. A rule reads it
// as lists.<name> (true when one of the event's identifiers is on it); a
// block list hit blocks by itself and an allow list hit allows, each a
// reason like a matched rule (rule "list:<name>"); a watch list only sets
// the variable.
type List struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Action      string    `json:"action" enum:"block,allow,watch"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// ListInput creates a list.
type ListInput struct {
	Name        string `json:"name" pattern:"^[a-z][a-z0-9_]{0,62}$" doc:"lower case, digits and _; rules read lists.<name>"`
	Action      string `json:"action" enum:"block,allow,watch"`
	Description string `json:"description,omitempty" maxLength:"500"`
}

// ListEntry is an identifier on a list.
type ListEntry struct {
	ID        string     `json:"id"`
	ListID    string     `json:"list_id"`
	Kind      string     `json:"kind" enum:"customer_id,end_user_id,device_id,ip,ip_prefix,email,email_domain,phone,card_fingerprint,card_bin,shipping_address,shipping_country"`
	Value     string     `json:"value" doc:"as events store it: the keyed hash for personal identifiers (given in clear, hashed on the way in)"`
	Note      string     `json:"note"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"absent: never expires"`
	CreatedAt time.Time  `json:"created_at"`
}

// ListEntryInput puts an identifier on a list.
type ListEntryInput struct {
	Kind      string     `json:"kind" enum:"customer_id,end_user_id,device_id,ip,ip_prefix,email,email_domain,phone,card_fingerprint,card_bin,shipping_address,shipping_country"`
	Value     string     `json:"value" minLength:"1" maxLength:"500" doc:"in clear; personal identifiers are stored as the tenant's keyed hash, like events"`
	Note      string     `json:"note,omitempty" maxLength:"1000"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"absent: never expires"`
}

// hashedKinds are the identifiers events store as keyed hashes, by the
// hash kind risk.Service.Hash takes.
var hashedKinds = map[string]string{
	"device_id": "device", "ip": "ip", "email": "email", "phone": "phone",
	"card_fingerprint": "card", "shipping_address": "address",
}

var listKinds = []string{"customer_id", "end_user_id", "device_id", "ip", "ip_prefix", "email", "email_domain", "phone",
	"card_fingerprint", "card_bin", "shipping_address", "shipping_country"}

var listName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// CreateList creates a list.
func (s *Service) CreateList(ctx context.Context, in ListInput) (List, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return List{}, err
	}
	var v abacus.Validation
	if !listName.MatchString(in.Name) {
		v.Add("name", "must be a lower-case letter then up to 62 lower-case letters, digits or _, got %q", in.Name)
	}
	if !slices.Contains([]string{"block", "allow", "watch"}, in.Action) {
		v.Add("action", "must be block, allow or watch, got %q", in.Action)
	}
	if len(in.Description) > 500 {
		v.Add("description", "must be at most 500 characters")
	}
	if err := v.Err("invalid_list"); err != nil {
		return List{}, err
	}
	l := List{ID: abacus.NewID("rlist"), Name: in.Name, Action: in.Action, Description: in.Description, CreatedAt: s.clock.Now()}
	_, err = s.db.ExecContext(ctx, `INSERT INTO risk_lists (tenant_id, id, name, action, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		tenant, l.ID, l.Name, l.Action, l.Description, db.TimeOf(l.CreatedAt))
	if db.IsUniqueViolation(err) {
		return List{}, abacus.Conflict("list_exists", "a list named %q exists", in.Name).WithField("name", "is taken")
	}
	if err != nil {
		return List{}, err
	}
	s.lists.invalidate(tenant)
	return l, nil
}

// ListLists lists the tenant's lists by name.
func (s *Service) ListLists(ctx context.Context, limit int, cursor string) (abacus.List[List], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[List]{}, err
	}
	limit = pageSize(limit)
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, action, description, created_at FROM risk_lists
		WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, tenant, cursor, limit+1)
	if err != nil {
		return abacus.List[List]{}, err
	}
	defer rows.Close()
	var items []List
	for rows.Next() {
		var l List
		var at db.Time
		if err := rows.Scan(&l.ID, &l.Name, &l.Action, &l.Description, &at); err != nil {
			return abacus.List[List]{}, err
		}
		l.CreatedAt = at.Time
		items = append(items, l)
	}
	return page(items, rows.Err(), limit, func(l List) string { return l.Name })
}

func (s *Service) getList(ctx context.Context, tenant, id string) (List, error) {
	var l List
	var at db.Time
	err := s.db.QueryRowContext(ctx, `SELECT id, name, action, description, created_at FROM risk_lists WHERE tenant_id = $1 AND id = $2`,
		tenant, id).Scan(&l.ID, &l.Name, &l.Action, &l.Description, &at)
	if err == sql.ErrNoRows {
		return List{}, abacus.NotFound("risk_list", id)
	}
	l.CreatedAt = at.Time
	return l, err
}

// AddListEntry puts an identifier on a list (again: its note and expiry
// are replaced).
func (s *Service) AddListEntry(ctx context.Context, listID string, in ListEntryInput) (ListEntry, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ListEntry{}, err
	}
	if _, err := s.getList(ctx, tenant, listID); err != nil {
		return ListEntry{}, err
	}
	var v abacus.Validation
	if !slices.Contains(listKinds, in.Kind) {
		v.Add("kind", "must be one of %s, got %q", strings.Join(listKinds, ", "), in.Kind)
	}
	in.Value = strings.TrimSpace(in.Value)
	if in.Value == "" || len(in.Value) > 500 {
		v.Add("value", "must be 1 to 500 characters")
	}
	if len(in.Note) > 1000 {
		v.Add("note", "must be at most 1000 characters")
	}
	now := s.clock.Now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		v.Add("expires_at", "must be in the future")
	}
	if err := v.Err("invalid_list_entry"); err != nil {
		return ListEntry{}, err
	}
	value := in.Value
	if hk, ok := hashedKinds[in.Kind]; ok {
		value = s.hash.Hash(tenant, hk, in.Value)
	} else if in.Kind == "email_domain" || in.Kind == "shipping_country" {
		value = strings.ToLower(value)
		if in.Kind == "shipping_country" {
			value = strings.ToUpper(value)
		}
	}
	e := ListEntry{ID: abacus.NewID("rle"), ListID: listID, Kind: in.Kind, Value: value, Note: in.Note, CreatedAt: now}
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC()
		e.ExpiresAt = &t
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO risk_list_entries (tenant_id, id, list_id, kind, value, note, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id, list_id, kind, value) DO UPDATE SET note = excluded.note, expires_at = excluded.expires_at`,
		tenant, e.ID, listID, e.Kind, e.Value, e.Note, db.NullTimeOf(e.ExpiresAt), db.TimeOf(now))
	if err != nil {
		return ListEntry{}, err
	}
	var at db.Time
	if err := s.db.QueryRowContext(ctx, `SELECT id, created_at FROM risk_list_entries WHERE tenant_id = $1 AND list_id = $2 AND kind = $3 AND value = $4`,
		tenant, listID, e.Kind, e.Value).Scan(&e.ID, &at); err != nil {
		return ListEntry{}, err
	}
	e.CreatedAt = at.Time
	s.lists.invalidate(tenant)
	return e, nil
}

// ListEntries lists a list's entries by id, expired ones included.
func (s *Service) ListEntries(ctx context.Context, listID string, limit int, cursor string) (abacus.List[ListEntry], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[ListEntry]{}, err
	}
	if _, err := s.getList(ctx, tenant, listID); err != nil {
		return abacus.List[ListEntry]{}, err
	}
	limit = pageSize(limit)
	rows, err := s.db.QueryContext(ctx, `SELECT id, list_id, kind, value, note, expires_at, created_at FROM risk_list_entries
		WHERE tenant_id = $1 AND list_id = $2 AND id > $3 ORDER BY id LIMIT $4`, tenant, listID, cursor, limit+1)
	if err != nil {
		return abacus.List[ListEntry]{}, err
	}
	defer rows.Close()
	var items []ListEntry
	for rows.Next() {
		var e ListEntry
		var exp db.NullTime
		var at db.Time
		if err := rows.Scan(&e.ID, &e.ListID, &e.Kind, &e.Value, &e.Note, &exp, &at); err != nil {
			return abacus.List[ListEntry]{}, err
		}
		e.ExpiresAt, e.CreatedAt = exp.Ptr(), at.Time
		items = append(items, e)
	}
	return page(items, rows.Err(), limit, func(e ListEntry) string { return e.ID })
}

// DeleteListEntry takes an entry off its list.
func (s *Service) DeleteListEntry(ctx context.Context, listID, entryID string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM risk_list_entries WHERE tenant_id = $1 AND list_id = $2 AND id = $3`, tenant, listID, entryID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("risk_list_entry", entryID)
	}
	s.lists.invalidate(tenant)
	return nil
}

// listCache holds each tenant's lists and live entries, read again after
// a change through this node or after listTTL (changes on other nodes).
type listCache struct {
	mu sync.Mutex
	by map[string]*tenantLists
}

type tenantLists struct {
	loaded  time.Time
	lists   []List
	entries map[string][]listHit // kind + "\x00" + value → lists
}

type listHit struct {
	list    int // index in lists
	expires time.Time
}

const listTTL = 2 * time.Second

func newListCache() *listCache { return &listCache{by: map[string]*tenantLists{}} }

func (c *listCache) invalidate(tenant string) {
	c.mu.Lock()
	delete(c.by, tenant)
	c.mu.Unlock()
}

// expire drops every tenant's cache, so entries that expired (and changes
// made on other nodes) leave at the next read.
func (c *listCache) expire() {
	c.mu.Lock()
	clear(c.by)
	c.mu.Unlock()
}

func (s *Service) tenantLists(ctx context.Context, tenant string) (*tenantLists, error) {
	now := s.clock.Now()
	s.lists.mu.Lock()
	tl := s.lists.by[tenant]
	s.lists.mu.Unlock()
	if tl != nil && now.Sub(tl.loaded) < listTTL && now.Sub(tl.loaded) >= 0 {
		return tl, nil
	}
	tl = &tenantLists{loaded: now, entries: map[string][]listHit{}}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, action, description, created_at FROM risk_lists WHERE tenant_id = $1 ORDER BY name`, tenant)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for rows.Next() {
		var l List
		var at db.Time
		if err := rows.Scan(&l.ID, &l.Name, &l.Action, &l.Description, &at); err != nil {
			rows.Close()
			return nil, err
		}
		idx[l.ID] = len(tl.lists)
		tl.lists = append(tl.lists, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT list_id, kind, value, expires_at FROM risk_list_entries
		WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, tenant, db.TimeOf(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var listID, kind, value string
		var exp db.NullTime
		if err := rows.Scan(&listID, &kind, &value, &exp); err != nil {
			return nil, err
		}
		i, ok := idx[listID]
		if !ok {
			continue
		}
		h := listHit{list: i}
		if p := exp.Ptr(); p != nil {
			h.expires = *p
		}
		tl.entries[kind+"\x00"+value] = append(tl.entries[kind+"\x00"+value], h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.lists.mu.Lock()
	s.lists.by[tenant] = tl
	s.lists.mu.Unlock()
	return tl, nil
}

// listPort is casework's risk.Lists.
type listPort struct{ s *Service }

func (p listPort) Names(ctx context.Context, tenant string) ([]string, error) {
	tl, err := p.s.tenantLists(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(tl.lists))
	for i, l := range tl.lists {
		out[i] = l.Name
	}
	return out, nil
}

func (p listPort) Match(ctx context.Context, tenant string, ev *risk.Event) (map[string]bool, []risk.Reason, error) {
	tl, err := p.s.tenantLists(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	now := p.s.clock.Now()
	m := make(map[string]bool, len(tl.lists))
	for _, l := range tl.lists {
		m[l.Name] = false
	}
	if len(tl.entries) == 0 {
		return m, nil, nil
	}
	hits := map[int][]string{}
	for _, kind := range listKinds {
		v := ev.Identifier(kind)
		if v == "" {
			continue
		}
		for _, h := range tl.entries[kind+"\x00"+v] {
			if !h.expires.IsZero() && !h.expires.After(now) {
				continue
			}
			m[tl.lists[h.list].Name] = true
			if !slices.Contains(hits[h.list], kind) {
				hits[h.list] = append(hits[h.list], kind)
			}
		}
	}
	var reasons []risk.Reason
	for i, l := range tl.lists {
		kinds := hits[i]
		if len(kinds) == 0 || l.Action == "watch" {
			continue
		}
		values := map[string]any{}
		for _, k := range kinds {
			values[k] = ev.Identifier(k)
		}
		reasons = append(reasons, risk.Reason{Rule: "list:" + l.Name, Name: l.Name, Action: l.Action,
			Description: fmt.Sprintf("%s on the %s list %q", strings.Join(kinds, ", "), l.Action, l.Name), Values: values})
	}
	return m, reasons, nil
}
