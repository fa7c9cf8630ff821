package risk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// RiskSettings are a tenant's risk settings.
type RiskSettings struct {
	DefaultDecision string     `json:"default_decision" enum:"allow,review,block" doc:"the decision when no rule matches (default allow)"`
	UpdatedAt       *time.Time `json:"updated_at,omitempty"`
}

// RiskSettingsInput changes a tenant's risk settings.
type RiskSettingsInput struct {
	DefaultDecision string `json:"default_decision" enum:"allow,review,block"`
}

// vocabulary is what tenant's rules may read: its counters and lists.
func (s *Service) vocabulary(ctx context.Context, q db.Querier, tenant string) (Vocabulary, error) {
	voc := Vocabulary{Counters: map[string]bool{}, Lists: map[string]bool{}}
	cs, err := tenantCounters(ctx, q, tenant)
	if err != nil {
		return voc, err
	}
	for _, c := range cs {
		voc.Counters[c.Name] = true
	}
	if s.lists != nil {
		names, err := s.lists.Names(ctx, tenant)
		if err != nil {
			return voc, err
		}
		for _, n := range names {
			voc.Lists[n] = true
		}
	}
	return voc, nil
}

// CreateRule stores version 1 of a new rule, as a draft. Invalid
// JsonLogic or an unknown variable is invalid_rule naming the place
// (logic.and[1].var).
func (s *Service) CreateRule(ctx context.Context, in RuleInput) (*Rule, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	voc, err := s.vocabulary(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	if _, err := in.validate(voc); err != nil {
		return nil, err
	}
	r := &Rule{ID: abacus.NewID("rul"), Version: 1, Name: in.Name, Description: in.Description, Action: in.Action, Mode: in.Mode,
		Logic: compact(in.Logic), Status: StatusDraft, CreatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
	err = s.db.InTx(ctx, func(tx *db.Tx) error { return insertRule(ctx, tx, tenant, r) })
	if err != nil {
		return nil, err
	}
	return r, nil
}

func compact(b json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

// CreateRuleVersion adds a draft version to a rule.
func (s *Service) CreateRuleVersion(ctx context.Context, id string, in RuleInput) (*Rule, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	voc, err := s.vocabulary(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	if _, err := in.validate(voc); err != nil {
		return nil, err
	}
	var r *Rule
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		vs, err := ruleVersions(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return abacus.NotFound("risk_rule", id)
		}
		r = &Rule{ID: id, Version: vs[len(vs)-1].Version + 1, Name: in.Name, Description: in.Description, Action: in.Action, Mode: in.Mode,
			Logic: compact(in.Logic), Status: StatusDraft, CreatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
		return insertRule(ctx, tx, tenant, r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// RuleWithVersions is a rule's newest version and all its versions.
type RuleWithVersions struct {
	Rule
	Versions []*Rule `json:"versions"`
}

// GetRule returns a rule's newest version with every version.
func (s *Service) GetRule(ctx context.Context, id string) (*RuleWithVersions, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	vs, err := ruleVersions(ctx, s.db, tenant, id)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, abacus.NotFound("risk_rule", id)
	}
	return &RuleWithVersions{Rule: *vs[len(vs)-1], Versions: vs}, nil
}

// ListRules pages through rules (each by its newest version) by id.
func (s *Service) ListRules(ctx context.Context, status, cursor string, limit int) (abacus.List[*Rule], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[*Rule]{}, err
	}
	limit = pageSize(limit)
	rs, err := latestRules(ctx, s.db, tenant, status, cursor, limit+1)
	if err != nil {
		return abacus.List[*Rule]{}, err
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		next = rs[limit-1].ID
	}
	return abacus.ListOf(rs, next), nil
}

// ActivateRule activates a version of a rule (its newest draft when
// version is 0); the version active before is retired. Activating the
// active version again changes nothing. A retired version cannot come
// back: create a new version.
func (s *Service) ActivateRule(ctx context.Context, id string, version int) (*Rule, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	var out *Rule
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		vs, err := ruleVersions(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return abacus.NotFound("risk_rule", id)
		}
		var target, active *Rule
		for _, v := range vs {
			if v.Status == StatusActive {
				active = v
			}
			if (version == 0 && v.Status == StatusDraft) || (version != 0 && v.Version == version) {
				target = v
			}
		}
		switch {
		case target == nil && version != 0:
			return abacus.NotFound("risk_rule_version", fmt.Sprintf("%s v%d", id, version))
		case target == nil && active != nil:
			out = active
			return nil
		case target == nil:
			return abacus.Conflict("rule_not_draft", "rule %s has no draft version to activate; create a new version", id)
		case target.Status == StatusActive:
			out = target
			return nil
		case target.Status == StatusRetired:
			return abacus.Conflict("rule_retired", "version %d of rule %s is retired; create a new version instead", target.Version, id)
		}
		if active == nil {
			n, err := countActive(ctx, tx, tenant)
			if err != nil {
				return err
			}
			if n >= MaxActiveRules {
				return abacus.Conflict("too_many_rules", "at most %d rules may be active; retire one first", MaxActiveRules)
			}
		} else if err := setRuleStatus(ctx, tx, tenant, id, active.Version, StatusRetired, now); err != nil {
			return err
		}
		if err := setRuleStatus(ctx, tx, tenant, id, target.Version, StatusActive, now); err != nil {
			return err
		}
		target.Status, target.ActivatedAt = StatusActive, &now
		out = target
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.invalidate(tenant)
	return out, nil
}

// RetireRule retires a rule's active version (and its drafts stay drafts).
func (s *Service) RetireRule(ctx context.Context, id string) (*Rule, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	var out *Rule
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		vs, err := ruleVersions(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return abacus.NotFound("risk_rule", id)
		}
		for _, v := range vs {
			if v.Status == StatusActive {
				v.Status, v.RetiredAt = StatusRetired, &now
				out = v
				return setRuleStatus(ctx, tx, tenant, id, v.Version, StatusRetired, now)
			}
		}
		return abacus.Conflict("rule_not_active", "rule %s has no active version", id)
	})
	if err != nil {
		return nil, err
	}
	s.invalidate(tenant)
	return out, nil
}

// CreateCounter defines a velocity counter and builds its state from the
// stored events within its window.
func (s *Service) CreateCounter(ctx context.Context, in CounterInput) (*Counter, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := in.validate()
	if err != nil {
		return nil, err
	}
	c.ID = abacus.NewID("rctr")
	c.CreatedAt = s.clock.Now().UTC().Truncate(time.Microsecond)
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cs, err := tenantCounters(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if len(cs) >= MaxCountersTenant {
			return abacus.Conflict("too_many_counters", "a tenant may define at most %d counters", MaxCountersTenant)
		}
		return insertCounter(ctx, tx, tenant, c)
	})
	if err != nil {
		return nil, err
	}
	// Counted live from now on (decisions read the configuration again),
	// and backfilled from the stored events before the answer.
	st := s.counters.putIfAbsent(tenant, newBuildingState(c))
	s.invalidate(tenant)
	if err := s.backfill(ctx, tenant, st); err != nil {
		go s.backfillUntilDone(tenant, st)
		return nil, err
	}
	return &c, nil
}

// ListCounters lists the tenant's counters (one page: at most 50).
func (s *Service) ListCounters(ctx context.Context) (abacus.List[Counter], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Counter]{}, err
	}
	cs, err := tenantCounters(ctx, s.db, tenant)
	return abacus.ListOf(cs, ""), err
}

// CounterValue is a counter's current value for one key value.
type CounterValue struct {
	Counter string  `json:"counter"`
	Key     string  `json:"key" doc:"the key value as events store it (personal identifiers hashed)"`
	Value   float64 `json:"value"`
	At      string  `json:"at"`
}

// GetSettings returns the tenant's risk settings.
func (s *Service) GetSettings(ctx context.Context) (RiskSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return RiskSettings{}, err
	}
	return loadSettings(ctx, s.db, tenant)
}

// UpdateSettings changes the tenant's risk settings.
func (s *Service) UpdateSettings(ctx context.Context, in RiskSettingsInput) (RiskSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return RiskSettings{}, err
	}
	if actionRank(in.DefaultDecision) == 0 {
		return RiskSettings{}, abacus.Invalid("invalid_risk_settings", "default_decision must be allow, review or block").
			WithField("default_decision", fmt.Sprintf("unknown decision %q", in.DefaultDecision))
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	st := RiskSettings{DefaultDecision: in.DefaultDecision, UpdatedAt: &now}
	if err := s.db.InTx(ctx, func(tx *db.Tx) error { return saveSettings(ctx, tx, tenant, st, now) }); err != nil {
		return RiskSettings{}, err
	}
	s.invalidate(tenant)
	return st, nil
}

// PutSchema stores the tenant's JSON Schema for an event type; events of
// the type must pass it besides the built-in one.
func (s *Service) PutSchema(ctx context.Context, typ string, doc []byte) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if !eventType.MatchString(typ) {
		return abacus.Invalid("invalid_event_type", "unknown event type %q; use registration, login, order, payment, refund, dispute or custom:<name>", typ).
			WithField("path.type", "unknown event type")
	}
	if _, err := CompileTenantSchema(doc); err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *db.Tx) error { return saveSchema(ctx, tx, tenant, typ, doc, s.clock.Now()) })
	if err != nil {
		return err
	}
	s.invalidate(tenant)
	return nil
}

// GetSchema returns the tenant's schema for an event type.
func (s *Service) GetSchema(ctx context.Context, typ string) (json.RawMessage, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	docs, err := loadSchemas(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	doc, ok := docs[typ]
	if !ok {
		return nil, abacus.NotFound("risk_event_schema", typ)
	}
	return doc, nil
}

// DeleteSchema removes the tenant's schema for an event type.
func (s *Service) DeleteSchema(ctx context.Context, typ string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	var found bool
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		found, err = deleteSchema(ctx, tx, tenant, typ)
		return err
	})
	if err != nil {
		return err
	}
	if !found {
		return abacus.NotFound("risk_event_schema", typ)
	}
	s.invalidate(tenant)
	return nil
}
