package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus/internal/db"
)

// Type is one version of one domain event type: its name (the subject
// token after abacus.events.), the aggregate it is about, and the JSON
// Schema of its payload, generated from the payload's Go type. A change a
// consumer could trip on (a field removed, renamed or retyped) is a new
// Version defined beside the old one, never an edit of it.
type Type struct {
	Name      string          `json:"type" example:"invoice.finalized" doc:"the event's name and subject token"`
	Version   int             `json:"version" minimum:"1" example:"1" doc:"bumped on a breaking change of the payload"`
	Aggregate string          `json:"aggregate_type" example:"invoice" doc:"what the event is about; aggregate ids are of this kind"`
	Summary   string          `json:"summary" example:"An invoice was finalized: numbered and due."`
	Schema    json.RawMessage `json:"schema" doc:"JSON Schema (2020-12) of the payload"`
}

// Kind is a defined event type whose payload is a P. Modules define each
// of their events once, as a package variable, and record through it, so
// a payload cannot drift from its schema; consumers decode through it.
type Kind[P any] struct{ t *Type }

var (
	typesMu sync.RWMutex
	types   = map[string]map[int]*Type{} // name → version → type
)

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Define registers an event type with payload P. It panics on a malformed
// name, a version below 1 or a (name, version) defined twice: those are
// programming errors found at start-up.
func Define[P any](name string, version int, aggregate, summary string) Kind[P] {
	if !typeName.MatchString(name) || version < 1 || aggregate == "" {
		panic(fmt.Sprintf("outbox: bad event type %q version %d aggregate %q", name, version, aggregate))
	}
	t := &Type{Name: name, Version: version, Aggregate: aggregate, Summary: summary, Schema: schemaOf(reflect.TypeFor[P]())}
	typesMu.Lock()
	defer typesMu.Unlock()
	if types[name] == nil {
		types[name] = map[int]*Type{}
	}
	if _, dup := types[name][version]; dup {
		panic(fmt.Sprintf("outbox: event type %s version %d defined twice", name, version))
	}
	types[name][version] = t
	return Kind[P]{t: t}
}

// schemaOf generates a self-contained JSON Schema for t with the reflection
// huma uses for the OpenAPI document, named types under $defs.
func schemaOf(t reflect.Type) json.RawMessage {
	reg := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	root := reg.Schema(t, false, "")
	b, err := json.Marshal(root)
	if err != nil {
		panic(fmt.Sprintf("outbox: schema of %s: %v", t, err))
	}
	if defs := reg.Map(); len(defs) > 0 {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["$schema"] = "https://json-schema.org/draft/2020-12/schema"
		m["$defs"] = defs
		b, err = json.Marshal(m)
		if err != nil {
			panic(fmt.Sprintf("outbox: schema of %s: %v", t, err))
		}
	}
	return b
}

// Type returns the event type k records.
func (k Kind[P]) Type() Type { return *k.t }

// New returns the event announcing payload about aggregateID at time at,
// for Record or RecordBatch.
func (k Kind[P]) New(tenant, aggregateID string, at time.Time, payload P) Event {
	return Event{TenantID: tenant, AggregateType: k.t.Aggregate, AggregateID: aggregateID,
		Type: k.t.Name, Version: k.t.Version, CreatedAt: at, body: payload}
}

// Record records the event in tx (see Record).
func (k Kind[P]) Record(ctx context.Context, tx *db.Tx, tenant, aggregateID string, at time.Time, payload P) (Event, error) {
	return Record(ctx, tx, k.New(tenant, aggregateID, at, payload), nil)
}

// Decode reads an event's payload; consumers use it to depend on the
// event's Go type rather than on the producer's tables.
func (k Kind[P]) Decode(payload []byte) (P, error) {
	var p P
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, fmt.Errorf("decoding %s v%d: %w", k.t.Name, k.t.Version, err)
	}
	return p, nil
}

// Types returns every defined event type, by name then version.
func Types() []Type {
	typesMu.RLock()
	defer typesMu.RUnlock()
	var out []Type
	for _, vs := range types {
		for _, t := range vs {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// LookupType returns version of event type name; version 0 means the
// latest.
func LookupType(name string, version int) (Type, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	vs := types[name]
	if version == 0 {
		for v := range vs {
			version = max(version, v)
		}
	}
	t, ok := vs[version]
	if !ok {
		return Type{}, false
	}
	return *t, true
}
