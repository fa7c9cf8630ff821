package risk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/risk/jsonlogic"
)

// basis is what a stored event's decision was based on besides the
// event: kept with the event for backtests.
type basis struct {
	Counters map[string]float64 `json:"counters"`
	Graph    GraphValues        `json:"graph"`
	Lists    map[string]bool    `json:"lists"`
	Score    float64            `json:"score"`
	ListHits []Reason           `json:"list_hits,omitempty"`
}

func basisOf(d *Decision) basis {
	b := basis{Counters: d.Features.Counters, Graph: d.Features.Graph, Lists: d.Features.Lists, Score: d.Score}
	for _, r := range d.Reasons {
		if len(r.Rule) > 5 && r.Rule[:5] == "list:" {
			b.ListHits = append(b.ListHits, Reason{Rule: r.Rule, Action: r.Action})
		}
	}
	return b
}

// BacktestInput asks how decisions would have gone with other rules.
type BacktestInput struct {
	Days  int           `json:"days" minimum:"1" maximum:"31" doc:"replay the events of the last days"`
	Rules []BacktestRef `json:"rules" minItems:"1" maxItems:"50" doc:"rule versions (drafts, usually) that join the active rules, each replacing its rule's active version"`
	// Examples bounds the changed decisions shown.
	Examples int `json:"examples,omitempty" minimum:"0" maximum:"100" doc:"changed decisions shown (default 10)"`
}

// BacktestRef names a rule version; version 0 is the newest.
type BacktestRef struct {
	Rule    string `json:"rule"`
	Version int    `json:"version,omitempty" minimum:"0"`
}

// Backtest is what the rule set would have changed.
type Backtest struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	Events      int               `json:"events" doc:"events replayed"`
	Changed     int               `json:"changed" doc:"events whose decision would differ"`
	Transitions map[string]int    `json:"transitions" doc:"changed decisions by old→new, e.g. allow→block"`
	Decisions   map[string]int    `json:"decisions" doc:"the new decisions by kind"`
	Errors      int               `json:"errors" doc:"rule evaluations that failed (skipped, as when deciding)"`
	Examples    []BacktestExample `json:"examples"`
	Rules       []RuleRef         `json:"rules" doc:"the rule set replayed (enforced)"`
	TookMS      float64           `json:"took_ms"`
}

// BacktestExample is one changed decision.
type BacktestExample struct {
	EventID    string    `json:"event_id"`
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Reasons    []Reason  `json:"reasons"`
}

// RunBacktest replays the tenant's events of the last days through the
// active enforced rules with the given versions joined (each replacing its
// rule's active version; every rule of the set is enforced, whatever its
// mode), over the features each event was decided with, and compares the
// outcome with the stored decision.
func (s *Service) RunBacktest(ctx context.Context, in BacktestInput) (*Backtest, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	var v abacus.Validation
	if in.Days < 1 || in.Days > 31 {
		v.Add("days", "must be 1 to 31")
	}
	if len(in.Rules) == 0 {
		v.Add("rules", "name at least one rule version to try")
	}
	if in.Examples == 0 {
		in.Examples = 10
	}
	set := map[string]*Rule{}
	var order []string
	active, err := activeRules(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	for _, r := range active {
		if r.Mode == ModeEnforce {
			set[r.ID] = r
			order = append(order, r.ID)
		}
	}
	for i, ref := range in.Rules {
		vs, err := ruleVersions(ctx, s.db, tenant, ref.Rule)
		if err != nil {
			return nil, err
		}
		var pick *Rule
		for _, r := range vs {
			if ref.Version == 0 || r.Version == ref.Version {
				pick = r
			}
		}
		if pick == nil {
			v.Add(fmt.Sprintf("rules[%d].rule", i), "no rule %s version %d", ref.Rule, ref.Version)
			continue
		}
		if set[pick.ID] == nil {
			order = append(order, pick.ID)
		}
		set[pick.ID] = pick
	}
	if err := v.Err("invalid_backtest"); err != nil {
		return nil, err
	}
	st, err := loadSettings(ctx, s.db, tenant)
	if err != nil {
		return nil, err
	}
	sort.Strings(order)
	rules := make([]*Rule, 0, len(order))
	out := &Backtest{Transitions: map[string]int{}, Decisions: map[string]int{}, Examples: []BacktestExample{}, Rules: []RuleRef{}}
	for _, id := range order {
		r := set[id]
		c, err := jsonlogic.Compile(r.Logic, jsonlogic.Options{})
		if err != nil {
			return nil, fmt.Errorf("rule %s v%d: %w", r.ID, r.Version, err)
		}
		r.compiled = c
		rules = append(rules, r)
		out.Rules = append(out.Rules, RuleRef{Rule: r.ID, Version: r.Version, Mode: ModeEnforce})
	}
	start := time.Now()
	out.To = s.clock.Now().UTC()
	out.From = out.To.Add(-time.Duration(in.Days) * 24 * time.Hour)

	// The window is cut into one time slice per core, each read through
	// its own connection and judged where it is read: one reader fed
	// every core before, and reading (a million rows of ~1.2 KB) was the
	// slower half.
	parts := max(1, runtime.GOMAXPROCS(0))
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	first, err := firstEventTime(ctx, s.db, tenant, out.From)
	if err != nil {
		return nil, err
	}
	span := out.To.Sub(first) / time.Duration(parts)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for i := range parts {
		from, until := first.Add(span*time.Duration(i)), first.Add(span*time.Duration(i+1))
		if i == parts-1 {
			until = out.To.Add(FutureSkew + time.Second) // events may be dated a little ahead
		}
		wg.Go(func() {
			local := &Backtest{Transitions: map[string]int{}, Decisions: map[string]int{}}
			var examples []BacktestExample
			errs[i] = scanBacktest(ctx, s.db, tenant, from, until, func(data, decisionID, features, decision string) error {
				var b basis
				var ev Event
				if gojson.Unmarshal([]byte(features), &b) != nil || gojson.Unmarshal([]byte(data), &ev) != nil {
					local.Errors++
					return nil
				}
				ev.finish()
				to, reasons, failed := judge(rules, &ev, &b, st.DefaultDecision)
				local.Events++
				local.Errors += failed
				local.Decisions[to]++
				if to != decision {
					local.Changed++
					local.Transitions[decision+"→"+to]++
					if len(examples) < in.Examples {
						examples = append(examples, BacktestExample{EventID: ev.ID, DecisionID: decisionID, Time: ev.Time,
							From: decision, To: to, Reasons: reasons})
					}
				}
				return nil
			})
			mu.Lock()
			out.Events += local.Events
			out.Changed += local.Changed
			out.Errors += local.Errors
			for k, n := range local.Transitions {
				out.Transitions[k] += n
			}
			for k, n := range local.Decisions {
				out.Decisions[k] += n
			}
			out.Examples = append(out.Examples, examples...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(out.Examples, func(i, j int) bool { return out.Examples[i].Time.Before(out.Examples[j].Time) })
	if len(out.Examples) > in.Examples {
		out.Examples = out.Examples[:in.Examples]
	}
	out.TookMS = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// judge decides an event over stored features with rules (all enforced).
func judge(rules []*Rule, ev *Event, b *basis, def string) (string, []Reason, int) {
	data := newRuleData(ev, &Features{Counters: b.Counters, Graph: b.Graph, Lists: b.Lists}, b.Score)
	defer data.release()
	var matched []Reason
	matched = append(matched, b.ListHits...)
	errs := 0
	for _, r := range rules {
		ok, err := r.compiled.Match(data.root)
		if err != nil {
			errs++
			continue
		}
		if ok {
			matched = append(matched, Reason{Rule: r.ID, Version: r.Version, Name: r.Name, Action: r.Action, Description: describe(r), Values: valuesOf(r, data.root)})
		}
	}
	if len(matched) == 0 {
		return def, []Reason{}, errs
	}
	sortByAction(matched)
	return matched[0].Action, matched, errs
}
