package risk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/risk/jsonlogic"
)

// Decisions and rule actions, in precedence order (block wins).
const (
	Block  = "block"
	Review = "review"
	Allow  = "allow"
)

// Rule modes and statuses.
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"

	StatusDraft   = "draft"
	StatusActive  = "active"
	StatusRetired = "retired"
)

// MaxActiveRules bounds a tenant's active rules (enforced and shadow).
const MaxActiveRules = 200

// Rule is one version of a tenant's rule. A rule's versions share its id;
// each starts as a draft, becomes active when activated (the version
// active before is retired) and is retired when a newer one is activated
// or the rule is retired:
//
//	draft ──activate──▶ active ──activate another version / retire──▶ retired
type Rule struct {
	ID          string          `json:"id"`
	Version     int             `json:"version"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Action      string          `json:"action" enum:"block,review,allow"`
	Mode        string          `json:"mode" enum:"enforce,shadow" doc:"shadow: evaluated and recorded with every decision, never enforced"`
	Logic       json.RawMessage `json:"logic" doc:"JsonLogic; variables: event.*, counters.<name>, graph.linked_accounts, graph.linked_labelled_fraud, graph.component_size, lists.<name>, score"`
	Status      string          `json:"status" enum:"draft,active,retired"`
	CreatedAt   time.Time       `json:"created_at"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	RetiredAt   *time.Time      `json:"retired_at,omitempty"`
	compiled    *jsonlogic.Rule
}

// RuleInput creates a rule (its version 1) or a new version of one.
type RuleInput struct {
	Name        string          `json:"name" minLength:"1" maxLength:"200"`
	Description string          `json:"description,omitempty" maxLength:"1000"`
	Action      string          `json:"action" enum:"block,review,allow"`
	Mode        string          `json:"mode,omitempty" enum:"enforce,shadow" doc:"default enforce"`
	Logic       json.RawMessage `json:"logic"`
}

// Vocabulary is what a tenant's rules may read besides event.*: its
// counters and lists by name.
type Vocabulary struct {
	Counters map[string]bool
	Lists    map[string]bool
}

// graphFeatures are the graph.* variables.
var graphFeatures = map[string]bool{"linked_accounts": true, "linked_labelled_fraud": true, "component_size": true}

// checkVar refuses a variable the decision pipeline does not provide.
func (voc Vocabulary) checkVar(name string) error {
	head, rest, _ := strings.Cut(name, ".")
	switch head {
	case "score":
		if rest == "" {
			return nil
		}
	case "event":
		field, _, _ := strings.Cut(rest, ".")
		if eventFields[field] {
			return nil
		}
		return fmt.Errorf("unknown variable %q: event has no field %q (see the event fields, or use event.properties.<name>)", name, field)
	case "counters":
		if voc.Counters[rest] {
			return nil
		}
		return fmt.Errorf("unknown variable %q: no counter is named %q; create it first (POST /api/v1/risk/counters)", name, rest)
	case "graph":
		if graphFeatures[rest] {
			return nil
		}
		return fmt.Errorf("unknown variable %q: the graph offers linked_accounts, linked_labelled_fraud and component_size", name)
	case "lists":
		if voc.Lists[rest] {
			return nil
		}
		return fmt.Errorf("unknown variable %q: no list is named %q", name, rest)
	}
	return fmt.Errorf("unknown variable %q: rules read event.*, counters.<name>, graph.<feature>, lists.<name> and score", name)
}

// compileRule compiles logic for a tenant with vocabulary voc; errors
// name the place in the rule (field "logic.and[1].var").
func compileRule(logic json.RawMessage, voc Vocabulary, field string) (*jsonlogic.Rule, error) {
	if len(logic) == 0 || string(logic) == "null" {
		return nil, abacus.Invalid("invalid_rule", "logic is required").WithField(field, "is required: a JsonLogic rule")
	}
	r, err := jsonlogic.Compile(logic, jsonlogic.Options{Check: voc.checkVar})
	if err != nil {
		var e *jsonlogic.Error
		if errors.As(err, &e) {
			f := field
			if e.Path != "" {
				f = field + "." + e.Path
			}
			return nil, abacus.Invalid("invalid_rule", "%s: %s", f, e.Message).WithField(f, e.Message)
		}
		return nil, err
	}
	return r, nil
}

// validate checks a rule input (logic included).
func (in *RuleInput) validate(voc Vocabulary) (*jsonlogic.Rule, error) {
	var v abacus.Validation
	if strings.TrimSpace(in.Name) == "" {
		v.Add("name", "is required")
	}
	switch in.Action {
	case Block, Review, Allow:
	default:
		v.Add("action", "unknown action %q; use block, review or allow", in.Action)
	}
	if in.Mode == "" {
		in.Mode = ModeEnforce
	}
	if in.Mode != ModeEnforce && in.Mode != ModeShadow {
		v.Add("mode", "unknown mode %q; use enforce or shadow", in.Mode)
	}
	compiled, err := compileRule(in.Logic, voc, "logic")
	if err != nil {
		if e, ok := abacus.AsError(err); ok {
			v.Fields = append(v.Fields, e.Fields...)
		} else {
			return nil, err
		}
	}
	if err := v.Err("invalid_rule"); err != nil {
		return nil, err
	}
	return compiled, nil
}

func actionRank(a string) int {
	switch a {
	case Block:
		return 3
	case Review:
		return 2
	case Allow:
		return 1
	}
	return 0
}
