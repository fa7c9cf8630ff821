package notifications

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/abacusbilling/abacus"
)

// Size limits of a template's parts, in bytes.
const (
	MaxSubjectBytes = 1 << 10
	MaxTextBytes    = 64 << 10
	MaxHTMLBytes    = 256 << 10
)

// NotificationTemplateInput is a template's three parts as a tenant saves them.
type NotificationTemplateInput struct {
	Subject string `json:"subject" maxLength:"1024" example:"Your invoice {{.invoice.number}} from {{.tenant.name}}" doc:"text/template; one line"`
	Text    string `json:"text" maxLength:"65536" example:"Hello {{.customer.name}},\n\nyour invoice {{.invoice.number}} over {{.invoice.total}} {{.invoice.currency}} is attached." doc:"text/template: the plain-text part"`
	HTML    string `json:"html" maxLength:"262144" example:"<!doctype html><html><body><p>Hello {{.customer.name}},</p><p>your invoice <b>{{.invoice.number}}</b> is attached.</p></body></html>" doc:"html/template: the HTML part, a whole document (inline CSS for mail clients)"`
}

// validateTemplate reports every problem of in as field errors with line
// and column: size, syntax, unknown functions and, when sample data is
// known for the template key, variables the data does not have.
func validateTemplate(in NotificationTemplateInput, sample map[string]any) error {
	var v abacus.Validation
	parts := []struct {
		field, body string
		max         int
		html        bool
	}{{"subject", in.Subject, MaxSubjectBytes, false}, {"text", in.Text, MaxTextBytes, false}, {"html", in.HTML, MaxHTMLBytes, true}}
	for _, p := range parts {
		if len(p.body) > p.max {
			v.Add(p.field, "is %d bytes; at most %d are allowed", len(p.body), p.max)
			continue
		}
		if msg := checkPart(p.field, p.body, p.html, sample); msg != "" {
			v.Add(p.field, "%s", msg)
		}
	}
	if strings.TrimSpace(in.Subject) == "" {
		v.Add("subject", "is required")
	}
	return v.Err("invalid_template")
}

// checkPart returns "line L, column C: problem", or "" when body is fine.
func checkPart(name, body string, html bool, sample map[string]any) string {
	if msg := unknownFunction(body); msg != "" {
		return msg
	}
	var err error
	if html {
		var t *htmltemplate.Template
		if t, err = parseTenantHTML(name, body); err == nil && sample != nil {
			err = t.Option("missingkey=error").Execute(&bytes.Buffer{}, sample)
		}
	} else {
		var t *texttemplate.Template
		if t, err = texttemplate.New(name).Funcs(funcs).Parse(body); err == nil && sample != nil {
			err = t.Option("missingkey=error").Execute(&bytes.Buffer{}, sample)
		}
	}
	if err == nil {
		return ""
	}
	return locate(body, err)
}

// unknownFunction finds a call of a function templates do not have, with
// its exact position (the parser itself reports only the line).
func unknownFunction(body string) string {
	set := map[string]*parse.Tree{}
	root := &parse.Tree{Name: "root", Mode: parse.SkipFuncCheck}
	if _, err := root.Parse(body, "{{", "}}", set); err != nil {
		return "" // the real parse reports it
	}
	var found string
	var tree *parse.Tree
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		if found != "" || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.IdentifierNode:
			if _, ok := funcs[n.Ident]; !ok && !builtinFuncs[n.Ident] {
				loc, _ := tree.ErrorContext(n)
				found = position(loc) + fmt.Sprintf("function %q is not defined; available: %s", n.Ident, funcNames())
			}
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	set["root"] = root
	for _, name := range slices.Sorted(maps.Keys(set)) {
		tree = set[name]
		walk(tree.Root)
	}
	return found
}

var builtinFuncs = map[string]bool{"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true,
	"not": true, "or": true, "print": true, "printf": true, "println": true, "urlquery": true, "eq": true, "ge": true, "gt": true,
	"le": true, "lt": true, "ne": true}

func funcNames() string {
	var out []string
	for k := range funcs {
		out = append(out, k)
	}
	for k := range builtinFuncs {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// position turns ErrorContext's "name:line:col" (col counted from 0)
// into "line L, column C: " (from 1).
func position(loc string) string {
	parts := strings.Split(loc, ":")
	if len(parts) < 3 {
		return ""
	}
	col, _ := strconv.Atoi(parts[len(parts)-1])
	return fmt.Sprintf("line %s, column %d: ", parts[len(parts)-2], col+1)
}

// errPos finds "name:line:col:" or "name:line:" in a template error.
var errPos = regexp.MustCompile(`^(?:html/)?template: [a-z]+:(\d+):(?:(\d+):)? ?(.*)$`)

// locate rewrites a template error as "line L, column C: problem". When
// the error has no column (syntax errors), the column is where the
// offending token first appears in an action on that line.
func locate(body string, err error) string {
	var ee texttemplate.ExecError
	if errors.As(err, &ee) {
		err = ee.Err
	}
	msg := err.Error()
	m := errPos.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(m[1])
	col, problem := m[2], m[3]
	problem = strings.TrimPrefix(problem, `executing "`)
	if i := strings.Index(m[3], `" at <`); i >= 0 && strings.HasPrefix(m[3], `executing "`) {
		problem = m[3][i+2:]
	}
	column := guessColumn(body, line, problem)
	if c, err := strconv.Atoi(col); err == nil {
		column = c + 1 // execution errors count columns from 0
	}
	return fmt.Sprintf("line %d, column %d: %s", line, column, problem)
}

var quoted = regexp.MustCompile(`"([^"]+)"|<([^>]+)>`)

func guessColumn(body string, line int, problem string) int {
	lines := strings.Split(body, "\n")
	if line < 1 || line > len(lines) {
		return 1
	}
	l := lines[line-1]
	start := max(strings.Index(l, "{{"), 0)
	if m := quoted.FindStringSubmatch(problem); m != nil {
		tok := m[1] + m[2]
		if i := strings.Index(l[start:], tok); i >= 0 {
			return start + i + 1
		}
	}
	return start + 1
}
