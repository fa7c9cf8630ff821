package app_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// openMeterShapes are the list routes that answer OpenMeter's shapes
// instead of {data, next_cursor} (docs/api.md): OpenMeter's SDK reads them.
var openMeterShapes = []string{"GET /api/v1/meters", "GET /api/v1/events", "GET /api/v2/events"}

// apiDoc is the served OpenAPI document, just the parts the conventions
// tests look at.
type apiDoc struct {
	Paths      map[string]map[string]*apiOp `json:"paths"`
	Components struct {
		Schemas map[string]*apiSchema `json:"schemas"`
	} `json:"components"`
}

type apiOp struct {
	Summary    string `json:"summary"`
	Parameters []struct {
		Name   string     `json:"name"`
		Schema *apiSchema `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]*apiMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]*struct {
		Content map[string]*apiMedia `json:"content"`
	} `json:"responses"`
}

type apiMedia struct {
	Schema   *apiSchema     `json:"schema"`
	Example  any            `json:"example"`
	Examples map[string]any `json:"examples"`
}

func (m *apiMedia) hasExample() bool { return m.Example != nil || len(m.Examples) > 0 }

type apiSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 any                   `json:"type"`
	Enum                 []any                 `json:"enum"`
	Items                *apiSchema            `json:"items"`
	Properties           map[string]*apiSchema `json:"properties"`
	AdditionalProperties any                   `json:"additionalProperties"`
}

// operations calls f with "METHOD /path" and each operation, sorted.
func (d *apiDoc) operations(f func(route string, op *apiOp)) {
	var routes []string
	ops := map[string]*apiOp{}
	for path, methods := range d.Paths {
		for method, op := range methods {
			r := strings.ToUpper(method) + " " + path
			routes, ops[r] = append(routes, r), op
		}
	}
	sort.Strings(routes)
	for _, r := range routes {
		f(r, ops[r])
	}
}

// resolve follows a $ref to its component schema.
func (d *apiDoc) resolve(s *apiSchema) *apiSchema {
	for s != nil && s.Ref != "" {
		s = d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

func (s *apiSchema) is(typ string) bool {
	switch t := s.Type.(type) {
	case string:
		return t == typ
	case []any:
		return slices.Contains(t, any(typ))
	}
	return false
}

// success returns the 2xx JSON response of op, nil when it has none.
func (op *apiOp) success() *apiMedia {
	for code, r := range op.Responses {
		if strings.HasPrefix(code, "2") && r.Content != nil {
			for ct, m := range r.Content {
				if strings.Contains(ct, "json") {
					return m
				}
			}
		}
	}
	return nil
}

func loadAPIDoc(t *testing.T) *apiDoc {
	t.Helper()
	a := start(t, db.SQLite, nil)
	r := a.do("GET", "/openapi.json", "", nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d %.200s", r.status, r.body)
	}
	var d apiDoc
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestListsHaveOneShape holds every list route to {data, next_cursor}:
// a bare array, or a data array without next_cursor, fails, except on the
// OpenMeter-compatible routes.
func TestListsHaveOneShape(t *testing.T) {
	t.Parallel()
	d := loadAPIDoc(t)
	d.operations(func(route string, op *apiOp) {
		m := op.success()
		if m == nil || slices.Contains(openMeterShapes, route) {
			return
		}
		s := d.resolve(m.Schema)
		if s == nil {
			return
		}
		if s.is("array") {
			t.Errorf("%s answers a bare array; answer abacus.List ({data, next_cursor})", route)
			return
		}
		if data := d.resolve(s.Properties["data"]); data != nil && data.is("array") && s.Properties["next_cursor"] == nil {
			t.Errorf("%s answers data without next_cursor; answer abacus.List", route)
		}
	})
}

// TestOpenAPIDocumentsEveryOperation holds the reference to its promise:
// every operation has a summary, an example of its success response and,
// when it takes a body, of the request; no enum offers "" as a value.
func TestOpenAPIDocumentsEveryOperation(t *testing.T) {
	t.Parallel()
	d := loadAPIDoc(t)
	d.operations(func(route string, op *apiOp) {
		if strings.TrimSpace(op.Summary) == "" {
			t.Errorf("%s has no summary", route)
		}
		if m := op.success(); m != nil && !m.hasExample() {
			t.Errorf("%s has no example of its success response", route)
		}
		if op.RequestBody != nil {
			for ct, m := range op.RequestBody.Content {
				if !m.hasExample() {
					t.Errorf("%s has no example of its %s request body", route, ct)
				}
			}
		}
		for _, p := range op.Parameters {
			if p.Schema != nil && slices.Contains(p.Schema.Enum, any("")) {
				t.Errorf(`%s: parameter %s lists "" among its values`, route, p.Name)
			}
		}
	})
	// Enums the reference once showed as bare strings.
	for _, e := range []struct{ schema, field string }{{"Charge", "kind"}, {"Interval", "unit"}} {
		if s := d.Components.Schemas[e.schema]; s == nil || s.Properties[e.field] == nil || len(s.Properties[e.field].Enum) == 0 {
			t.Errorf("schema %s.%s does not list its values", e.schema, e.field)
		}
	}
	for name, s := range d.Components.Schemas {
		walkSchema(s, name, func(path string, s *apiSchema) {
			if slices.Contains(s.Enum, any("")) {
				t.Errorf(`schema %s lists "" among its values`, path)
			}
		})
	}
}

func walkSchema(s *apiSchema, path string, f func(string, *apiSchema)) {
	if s == nil {
		return
	}
	f(path, s)
	walkSchema(s.Items, path+"[]", f)
	for k, p := range s.Properties {
		walkSchema(p, path+"."+k, f)
	}
}

// TestGettingStartedRuns runs the curl lines of the reference's getting
// started section against a fresh server, in order; each must succeed
// (curl -f: an HTTP error fails it).
func TestGettingStartedRuns(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	a := start(t, db.SQLite, nil)
	var doc struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
	}
	if err := json.Unmarshal(a.do("GET", "/openapi.json", "", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(doc.Info.Description, "# Getting started")
	blocks := 0
	for {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```")
		rest = tail
		if strings.HasPrefix(block, "export ") {
			continue // sets what the environment below sets
		}
		blocks++
		cmd := exec.Command("sh", "-ec", "curl() { command curl -f \"$@\"; }\n"+block)
		cmd.Env = append(os.Environ(), "ABACUS="+a.base, "KEY="+a.key)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s\n%v: %s", block, err, out)
		}
	}
	if blocks < 5 {
		t.Fatalf("found %d curl blocks in the getting started section", blocks)
	}
	var subs struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(a.do("GET", "/api/v1/subscriptions?customer_id=crm-4711", a.key, nil).body, &subs); err != nil || len(subs.Data) != 1 {
		t.Fatalf("the subscription of crm-4711: %v %v", subs, err)
	}
}
