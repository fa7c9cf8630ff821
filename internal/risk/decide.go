package risk

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// GraphValues are the graph.* features of an event.
type GraphValues struct {
	LinkedAccounts      int `json:"linked_accounts" doc:"customers linked to the event's entities"`
	LinkedLabelledFraud int `json:"linked_labelled_fraud" doc:"of them, labelled fraud or with a lost dispute"`
	ComponentSize       int `json:"component_size" doc:"entities in the event's connected component"`
}

// Graph is the link graph of entities (customers, end users, devices,
// cards, e-mails, phones, IPs, addresses). The risk service calls
// Features while deciding, and Observe for every stored event: once
// after it commits, in commit order, and at start for every stored event
// in time order (the rebuild), so the graph never needs its own copy of
// the events.
type Graph interface {
	// Features answers ev's graph features as if ev were linked already.
	Features(ctx context.Context, tenant string, ev *Event) (GraphValues, error)
	// Observe links the entities each of evs carries, in order, as one
	// change (readers wait once, not once per event).
	Observe(tenant string, evs ...*Event)
}

// Lists are allow and block lists of identifiers.
type Lists interface {
	// Names are the lists rules may read as lists.<name> (true when one
	// of the event's identifiers is on the list).
	Names(ctx context.Context, tenant string) ([]string, error)
	// Match answers ev's membership per list name (a new map, which the
	// decision keeps as its list features), and the hits that decide by
	// themselves (a block list hit: Action block), which count like
	// matched rules.
	Match(ctx context.Context, tenant string, ev *Event) (map[string]bool, []Reason, error)
}

// Scorer gives the score (0–100) of an event from its features, and the
// features that pushed it most.
type Scorer interface {
	Score(ctx context.Context, tenant string, ev *Event, f *Features) (float64, []Reason, error)
}

// DecisionHook runs in the transaction that stores decisions of events
// (review cases open there); each decision's StoredEvent is its event.
type DecisionHook func(ctx context.Context, tx *db.Tx, tenant string, ds []*Decision) error

// Features are what a decision was based on besides the event.
type Features struct {
	Counters map[string]float64 `json:"counters"`
	Graph    GraphValues        `json:"graph"`
	Lists    map[string]bool    `json:"lists"`
}

// Reason is why a decision went the way it did: a matched rule (its id,
// version and name, and the values of the variables it read), a list
// hit, or a feature behind the score.
type Reason struct {
	Rule        string         `json:"rule" doc:"the rule id, list:<name> for a list hit, score:<feature> for the score"`
	Version     int            `json:"version,omitempty"`
	Name        string         `json:"name,omitempty"`
	Action      string         `json:"action,omitempty" enum:"block,review,allow"`
	Description string         `json:"description"`
	Values      map[string]any `json:"values"`
}

// RuleError is a rule that failed while evaluating: it was skipped.
type RuleError struct {
	Rule    string `json:"rule"`
	Version int    `json:"version"`
	Name    string `json:"name"`
	Mode    string `json:"mode" enum:"enforce,shadow"`
	Error   string `json:"error"`
}

// RuleRef names a rule version a decision evaluated.
type RuleRef struct {
	Rule    string `json:"rule"`
	Version int    `json:"version"`
	Mode    string `json:"mode" enum:"enforce,shadow"`
	Matched bool   `json:"matched"`
}

// Decision is the answer to a risk event or question, stored with what it
// was based on.
type Decision struct {
	ID       string   `json:"id"`
	EventID  string   `json:"event_id,omitempty" doc:"the stored event; absent for a pure question"`
	Decision string   `json:"decision" enum:"allow,review,block"`
	Score    float64  `json:"score" minimum:"0" maximum:"100"`
	Reasons  []Reason `json:"reasons" doc:"matched enforced rules and list hits, the deciding one first; empty when the default decided"`
	// Default is true when no rule matched and the tenant's default decided.
	Default      bool        `json:"default"`
	Features     Features    `json:"features"`
	ScoreReasons []Reason    `json:"score_reasons"`
	Shadow       []Reason    `json:"shadow" doc:"shadow rules that matched: what they would have done"`
	RuleErrors   []RuleError `json:"rule_errors" doc:"rules that failed at evaluation and were skipped"`
	Rules        []RuleRef   `json:"rules,omitempty" doc:"every rule version evaluated; on GET"`
	Event        *Event      `json:"event,omitempty" doc:"the event as evaluated (identifiers hashed); on GET"`
	CreatedAt    time.Time   `json:"created_at"`
	stored       *Event
}

// StoredEvent is the event a decision was stored with, as stored; set
// for the decisions a DecisionHook receives, nil for questions.
func (d *Decision) StoredEvent() *Event { return d.stored }

// decisionRecord is a decision as stored: the rule versions evaluated as
// "rul_…@2" (":shadow" appended for shadow ones), or the id of that list
// in risk_rule_sets (RuleSetRef); the features and the event only for a
// question (a stored event keeps its own).
type decisionRecord struct {
	ID           string      `json:"id"`
	EventID      string      `json:"event_id,omitempty"`
	Decision     string      `json:"decision"`
	Score        float64     `json:"score"`
	Reasons      []Reason    `json:"reasons"`
	Default      bool        `json:"default"`
	ScoreReasons []Reason    `json:"score_reasons"`
	Shadow       []Reason    `json:"shadow"`
	RuleErrors   []RuleError `json:"rule_errors"`
	RuleSet      []string    `json:"rule_set,omitempty"`
	RuleSetRef   string      `json:"rule_set_ref,omitempty"`
	Features     *Features   `json:"features,omitempty"`
	Event        *Event      `json:"event,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
}

// recordOf is d as stored; setRef names the rule set d evaluated in
// risk_rule_sets ("" to store the set in the record).
func recordOf(d *Decision, ev *Event, stored bool, setRef string) decisionRecord {
	r := decisionRecord{ID: d.ID, EventID: d.EventID, Decision: d.Decision, Score: d.Score, Reasons: d.Reasons, Default: d.Default,
		ScoreReasons: d.ScoreReasons, Shadow: d.Shadow, RuleErrors: d.RuleErrors, CreatedAt: d.CreatedAt, RuleSetRef: setRef}
	if setRef == "" {
		r.RuleSet = ruleSetOf(d.Rules)
	}
	if !stored {
		f := d.Features
		r.Features, r.Event = &f, ev
	}
	return r
}

// ruleSetOf names rule versions as decision records store them.
func ruleSetOf(refs []RuleRef) []string {
	set := make([]string, len(refs))
	for i, ref := range refs {
		set[i] = ref.Rule + "@" + strconv.Itoa(ref.Version)
		if ref.Mode == ModeShadow {
			set[i] += ":shadow"
		}
	}
	return set
}

// decision rebuilds the decision; features and event are the stored
// event's when the record has none; set is the rule set evaluated (the
// record's own, or the one RuleSetRef names).
func (r *decisionRecord) decision(features *Features, ev *Event, set []string) *Decision {
	d := &Decision{ID: r.ID, EventID: r.EventID, Decision: r.Decision, Score: r.Score, Reasons: r.Reasons, Default: r.Default,
		ScoreReasons: r.ScoreReasons, Shadow: r.Shadow, RuleErrors: r.RuleErrors, CreatedAt: r.CreatedAt, Event: r.Event, Rules: []RuleRef{}}
	if r.Features != nil {
		d.Features = *r.Features
	} else if features != nil {
		d.Features = *features
	}
	if d.Event == nil {
		d.Event = ev
	}
	matched := map[string]bool{}
	for _, x := range append(append([]Reason{}, r.Reasons...), r.Shadow...) {
		matched[x.Rule+"@"+strconv.Itoa(x.Version)] = true
	}
	for _, s := range set {
		ref, shadow := strings.CutSuffix(s, ":shadow")
		id, v, _ := strings.Cut(ref, "@")
		n, _ := strconv.Atoi(v)
		mode := ModeEnforce
		if shadow {
			mode = ModeShadow
		}
		d.Rules = append(d.Rules, RuleRef{Rule: id, Version: n, Mode: mode, Matched: matched[ref]})
	}
	return d
}

// decide evaluates ev for tenant with its configuration. apply keeps ev
// in the counters (an event); false answers as if (a question).
func (s *Service) decide(ctx context.Context, tc *tenantConfig, ev *Event, apply bool) (*Decision, error) {
	id := abacus.NewID("rdec")
	if apply {
		id = decisionIDOf(ev.ID)
	}
	d := &Decision{ID: id, CreatedAt: s.clock.Now().UTC(),
		Features: Features{Counters: make(map[string]float64, len(tc.counters))},
		Reasons:  []Reason{}, ScoreReasons: []Reason{}, Shadow: []Reason{}, RuleErrors: []RuleError{}}
	for _, st := range tc.counters {
		d.Features.Counters[st.def.Name] = st.add(ev, apply)
	}
	listReasons, err := s.features(ctx, tc.tenant, ev, d)
	if err != nil {
		return nil, err
	}
	var matched []Reason
	for _, lr := range listReasons {
		if actionRank(lr.Action) > 0 {
			matched = append(matched, lr)
		}
	}
	data := newRuleData(ev, &d.Features, d.Score)
	defer data.release()
	// The rule versions evaluated are stored once per set (tc.ruleSetID);
	// a decision lists them only without one.
	listRules := tc.ruleSetID == ""
	for _, r := range tc.rules {
		ok, err := r.compiled.Match(data.root)
		if listRules {
			d.Rules = append(d.Rules, RuleRef{Rule: r.ID, Version: r.Version, Mode: r.Mode, Matched: ok && err == nil})
		}
		if err != nil {
			d.RuleErrors = append(d.RuleErrors, RuleError{Rule: r.ID, Version: r.Version, Name: r.Name, Mode: r.Mode, Error: err.Error()})
			continue
		}
		if !ok {
			continue
		}
		reason := Reason{Rule: r.ID, Version: r.Version, Name: r.Name, Action: r.Action, Description: describe(r), Values: valuesOf(r, data.root)}
		if r.Mode == ModeShadow {
			d.Shadow = append(d.Shadow, reason)
		} else {
			matched = append(matched, reason)
		}
	}
	sortByAction(matched)
	if len(matched) > 0 {
		d.Decision = matched[0].Action
		d.Reasons = matched
	} else {
		d.Decision, d.Default = tc.defaultDecision, true
	}
	return d, nil
}

// features fills d's graph and list features and its score, and returns
// the list hits that decide by themselves.
func (s *Service) features(ctx context.Context, tenant string, ev *Event, d *Decision) ([]Reason, error) {
	if s.graph != nil {
		g, err := s.graph.Features(ctx, tenant, ev)
		if err != nil {
			return nil, err
		}
		d.Features.Graph = g
	}
	var listReasons []Reason
	if s.lists != nil {
		m, rs, err := s.lists.Match(ctx, tenant, ev)
		if err != nil {
			return nil, err
		}
		d.Features.Lists, listReasons = m, rs
	}
	if d.Features.Lists == nil {
		d.Features.Lists = map[string]bool{}
	}
	if s.scorer != nil {
		sc, rs, err := s.scorer.Score(ctx, tenant, ev, &d.Features)
		if err != nil {
			return nil, err
		}
		d.Score = min(max(sc, 0), 100)
		if rs != nil {
			d.ScoreReasons = rs
		}
	}
	return listReasons, nil
}

// sortByAction puts the highest action first; within one action, the
// first match stays first (rules are in their order, list hits before
// rules).
func sortByAction(matched []Reason) {
	slices.SortStableFunc(matched, func(a, b Reason) int { return actionRank(b.Action) - actionRank(a.Action) })
}

// ruleData is what rules read (JsonLogic's var): event.*, counters.*,
// graph.*, lists.* and score, as maps in root. The maps are reused from
// decision to decision (ruleDataPool) rather than made for each: no value
// a rule computes outlives its evaluation, and valuesOf copies out only
// leaves (or the event's own properties), never one of these maps.
type ruleData struct {
	root, event, counters, graph, lists map[string]any
}

var ruleDataPool = sync.Pool{New: func() any {
	d := &ruleData{event: make(map[string]any, 24), counters: map[string]any{}, graph: make(map[string]any, 3), lists: map[string]any{}}
	d.root = map[string]any{"event": d.event, "counters": d.counters, "graph": d.graph, "lists": d.lists}
	return d
}}

// newRuleData is the data rules read for ev with features f and score;
// release it once the rules are evaluated.
func newRuleData(ev *Event, f *Features, score float64) *ruleData {
	d := ruleDataPool.Get().(*ruleData)
	ev.putRuleView(d.event)
	for k, v := range f.Counters {
		d.counters[k] = v
	}
	d.graph["linked_accounts"] = float64(f.Graph.LinkedAccounts)
	d.graph["linked_labelled_fraud"] = float64(f.Graph.LinkedLabelledFraud)
	d.graph["component_size"] = float64(f.Graph.ComponentSize)
	for k, v := range f.Lists {
		d.lists[k] = v
	}
	d.root["score"] = score
	return d
}

func (d *ruleData) release() {
	clear(d.event)
	clear(d.counters)
	clear(d.lists)
	ruleDataPool.Put(d)
}

func describe(r *Rule) string {
	if r.Description != "" {
		return r.Description
	}
	return r.Name
}

// valuesOf returns the values of the variables r reads.
func valuesOf(r *Rule, data map[string]any) map[string]any {
	vars := r.compiled.Vars()
	out := make(map[string]any, len(vars))
	for _, name := range vars {
		out[name] = lookupPath(data, name)
	}
	return out
}

func lookupPath(data any, name string) any {
	for rest, more := name, true; more; {
		var p string
		p, rest, more = strings.Cut(rest, ".")
		m, ok := data.(map[string]any)
		if !ok {
			return nil
		}
		data = m[p]
	}
	return data
}
