package jsonlogic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// tcase is one rule and data, with the reference answer once known.
type tcase struct {
	Logic any `json:"logic"`
	Data  any `json:"data"`
}

type refAnswer struct {
	Result    any    `json:"result"`
	Undefined bool   `json:"undefined"`
	Error     string `json:"error"`
}

var (
	npmOnce sync.Once
	npmErr  error
)

// reference runs json-logic-js (testdata/node, pinned in its
// package-lock.json) on the cases. Like the other independent verifiers,
// it fails rather than skips without node.
func reference(t *testing.T, cases []tcase) []refAnswer {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", "node"))
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to run the reference implementation json-logic-js: %v", err)
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "json-logic-js", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = fmt.Errorf("npm is needed to install json-logic-js (npm ci in %s): %w", dir, err)
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "apply.cjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("json-logic-js: %v\n%s", err, stderr.String())
	}
	var answers []refAnswer
	d := json.NewDecoder(bytes.NewReader(out))
	if err := d.Decode(&answers); err != nil || len(answers) != len(cases) {
		t.Fatalf("json-logic-js answered %d results for %d cases: %v", len(answers), len(cases), err)
	}
	return answers
}

// canon is a JSON value as JSON.stringify leaves it: NaN and ±Infinity
// become null, -0 is 0.
func canon(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		if x == 0 {
			return 0.0
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canon(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canon(e)
		}
		return out
	}
	return v
}

func show(v any) string {
	b, _ := json.Marshal(canon(v))
	return string(b)
}

// TestSharedSuite runs jsonlogic.com's tests.json (testdata/tests.json):
// every case must give the expected result in Go and in json-logic-js.
func TestSharedSuite(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "tests.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all []any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	var cases []tcase
	var want []any
	for _, c := range all {
		arr, ok := c.([]any)
		if !ok {
			continue // a heading
		}
		cases = append(cases, tcase{Logic: arr[0], Data: arr[1]})
		want = append(want, arr[2])
	}
	if len(cases) < 250 {
		t.Fatalf("the suite has %d cases; expected the whole of tests.json", len(cases))
	}
	ref := reference(t, cases)
	for i, c := range cases {
		r, err := CompileValue(c.Logic, Options{})
		if err != nil {
			t.Errorf("case %d %s: compile: %v", i, show(c.Logic), err)
			continue
		}
		got, err := r.Eval(c.Data)
		if err != nil {
			t.Errorf("case %d %s: %v", i, show(c.Logic), err)
			continue
		}
		if !reflect.DeepEqual(canon(got), canon(want[i])) {
			t.Errorf("case %d %s on %s: got %s, want %s", i, show(c.Logic), show(c.Data), show(got), show(want[i]))
		}
		if ref[i].Error != "" || !reflect.DeepEqual(canon(ref[i].Result), canon(want[i])) {
			t.Errorf("case %d %s: json-logic-js answered %s (error %q), the suite wants %s", i, show(c.Logic), show(ref[i].Result), ref[i].Error, show(want[i]))
		}
	}
}

// gen makes random rules and data from a seed.
type gen struct {
	r    *rand.Rand
	keys []string
}

func (g *gen) scalar() any {
	switch g.r.IntN(9) {
	case 0:
		return nil
	case 1:
		return g.r.IntN(2) == 0
	case 2, 3:
		return float64(g.r.IntN(21) - 10)
	case 4:
		return float64(g.r.IntN(2000)-1000) / 8
	case 5:
		return []string{"", "0", "1", "10", "2.5", "-3", "abc", "ABC", " 7 ", "1e3", "true", "null", "a.b", "Infinity"}[g.r.IntN(14)]
	case 6:
		return fmt.Sprintf("s%d", g.r.IntN(5))
	case 7:
		return []any{float64(g.r.IntN(5)), fmt.Sprintf("s%d", g.r.IntN(3))}
	default:
		return float64(g.r.IntN(3))
	}
}

func (g *gen) data() map[string]any {
	d := map[string]any{}
	for _, k := range g.keys {
		if g.r.IntN(5) == 0 {
			continue // missing
		}
		d[k] = g.scalar()
	}
	items := []any{}
	for i := g.r.IntN(5); i > 0; i-- {
		items = append(items, map[string]any{"qty": float64(g.r.IntN(6)), "sku": fmt.Sprintf("s%d", g.r.IntN(3))})
	}
	d["items"] = items
	nums := []any{}
	for i := g.r.IntN(6); i > 0; i-- {
		nums = append(nums, float64(g.r.IntN(10)-3))
	}
	d["nums"] = nums
	d["obj"] = map[string]any{"a": g.scalar(), "b": map[string]any{"c": g.scalar()}}
	return d
}

func (g *gen) variable() any {
	names := append([]string{"obj.a", "obj.b.c", "obj.b", "nums.0", "nums.length", "missing.x", "items.0.qty"}, g.keys...)
	name := names[g.r.IntN(len(names))]
	if g.r.IntN(4) == 0 {
		return map[string]any{"var": []any{name, g.scalar()}}
	}
	return map[string]any{"var": name}
}

func (g *gen) expr(depth int) any {
	if depth <= 0 || g.r.IntN(4) == 0 {
		if g.r.IntN(2) == 0 {
			return g.variable()
		}
		return g.scalar()
	}
	sub := func() any { return g.expr(depth - 1) }
	op := func(name string, args ...any) any { return map[string]any{name: args} }
	switch g.r.IntN(24) {
	case 0:
		return op([]string{"==", "!=", "===", "!=="}[g.r.IntN(4)], sub(), sub())
	case 1, 2:
		return op([]string{"<", ">", "<=", ">="}[g.r.IntN(4)], sub(), sub())
	case 3:
		return op([]string{"<", "<="}[g.r.IntN(2)], sub(), sub(), sub())
	case 4:
		return op([]string{"and", "or"}[g.r.IntN(2)], sub(), sub(), sub())
	case 5:
		return op("if", sub(), sub(), sub())
	case 6:
		return op([]string{"!", "!!"}[g.r.IntN(2)], sub())
	case 7:
		return op([]string{"+", "*"}[g.r.IntN(2)], sub(), sub())
	case 8:
		return op([]string{"-", "/", "%"}[g.r.IntN(3)], sub(), sub())
	case 9:
		return op("-", sub())
	case 10:
		return op([]string{"min", "max"}[g.r.IntN(2)], sub(), sub(), sub())
	case 11:
		return op("in", sub(), []any{"s1", 1.0, "abc", nil, true}[g.r.IntN(5)])
	case 12:
		return op("in", sub(), sub())
	case 13:
		return op("cat", sub(), sub())
	case 14:
		args := []any{sub(), float64(g.r.IntN(9) - 4)}
		if g.r.IntN(2) == 0 {
			args = append(args, float64(g.r.IntN(9)-4))
		}
		return op("substr", args...)
	case 15:
		return op("merge", sub(), sub())
	case 16:
		return op("missing", g.keys[g.r.IntN(len(g.keys))], "obj.a", "obj.zz")
	case 17:
		return op("missing_some", float64(g.r.IntN(3)), []any{g.keys[0], g.keys[1], "obj.b.c"})
	case 18:
		return op([]string{"filter", "all", "none", "some"}[g.r.IntN(4)], map[string]any{"var": "nums"},
			op([]string{">", "<", "=="}[g.r.IntN(3)], map[string]any{"var": ""}, float64(g.r.IntN(6)-2)))
	case 19:
		return op("map", map[string]any{"var": "items"}, op("*", map[string]any{"var": "qty"}, sub()))
	case 20:
		return op("reduce", map[string]any{"var": "nums"},
			op([]string{"+", "*", "max"}[g.r.IntN(3)], map[string]any{"var": "current"}, map[string]any{"var": "accumulator"}), float64(g.r.IntN(3)))
	case 21:
		return op("some", map[string]any{"var": "items"}, op(">=", map[string]any{"var": "qty"}, float64(g.r.IntN(6))))
	case 22:
		return []any{sub(), sub()}
	default:
		return op("?:", sub(), sub(), sub())
	}
}

// TestAgreesWithJSONLogicJS evaluates seeded random rules on random data
// in Go and in json-logic-js: every result must be the same JSON.
func TestAgreesWithJSONLogicJS(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(18, 2026)), keys: []string{"a", "b", "c", "d"}}
	const n = 3000
	cases := make([]tcase, n)
	for i := range cases {
		cases[i] = tcase{Logic: g.expr(4), Data: g.data()}
	}
	// The cases travel as JSON: compare what both sides read.
	b, _ := json.Marshal(cases)
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	ref := reference(t, cases)
	bad := 0
	for i, c := range cases {
		r, err := CompileValue(c.Logic, Options{})
		if err != nil {
			t.Fatalf("case %d %s: compile: %v", i, show(c.Logic), err)
		}
		got, err := r.Eval(c.Data)
		switch {
		case err != nil || ref[i].Error != "":
			if (err == nil) != (ref[i].Error == "") {
				t.Errorf("case %d %s on %s: Go error %v, json-logic-js error %q", i, show(c.Logic), show(c.Data), err, ref[i].Error)
				bad++
			}
		case !reflect.DeepEqual(canon(got), canon(ref[i].Result)):
			t.Errorf("case %d %s on %s: Go %s, json-logic-js %s", i, show(c.Logic), show(c.Data), show(got), show(ref[i].Result))
			bad++
		}
		if bad > 20 {
			t.Fatal("too many disagreements")
		}
	}
}

func TestCompileRefusesWithPaths(t *testing.T) {
	check := func(name string) error {
		if strings.HasPrefix(name, "event.") || name == "score" {
			return nil
		}
		return fmt.Errorf("unknown variable %q", name)
	}
	for _, c := range []struct{ logic, path, msg string }{
		{`{"and":[{">":[{"var":"score"},50]},{"==":[{"var":"counters.x"},1]}]}`, "and[1].==[0].var", `unknown variable "counters.x"`},
		{`{"frobnicate":[1]}`, "frobnicate", "unknown operation"},
		{`{"if":[true,{"var":{"cat":["ev","ent.x"]}}]}`, "if[1].var", "literal string"},
		{`{"and":[1,`, "", "not valid JSON"},
		{`{"*":[]}`, "*", "at least one argument"},
		{strings.Repeat(`{"!":`, 40) + "true" + strings.Repeat("}", 40), "", "deeper than 32"},
	} {
		_, err := Compile([]byte(c.logic), Options{Check: check})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: got %v, want a compile error", c.logic, err)
		}
		if (c.path != "" && e.Path != c.path) || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: got path %q message %q, want path %q and %q", c.logic, e.Path, e.Message, c.path, c.msg)
		}
	}
	// Scoped variables name the items and are not checked.
	if _, err := Compile([]byte(`{"some":[{"var":"event.properties.items"},{">":[{"var":"qty"},3]}]}`), Options{Check: check}); err != nil {
		t.Fatal(err)
	}
}

func TestBudgetStopsRunawayRules(t *testing.T) {
	// map over map over 200×200 items is 40,000 steps.
	logic := `{"map":[{"var":"xs"},{"map":[{"var":""},{"+":[{"var":""},1]}]}]}`
	r, err := Compile([]byte(logic), Options{})
	if err != nil {
		t.Fatal(err)
	}
	row := make([]any, 200)
	for i := range row {
		row[i] = float64(i)
	}
	xs := make([]any, 200)
	for i := range xs {
		xs[i] = row
	}
	if _, err := r.Eval(map[string]any{"xs": xs}); !errors.Is(err, ErrBudget) {
		t.Fatalf("got %v, want ErrBudget", err)
	}
	if _, err := r.Eval(map[string]any{"xs": xs[:10]}); err != nil {
		t.Fatalf("a small input: %v", err)
	}
}
