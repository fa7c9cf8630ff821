package notifications

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

// Rendered is a notification's content for one locale.
type Rendered struct {
	Locale  string `json:"locale" example:"en"`
	Subject string `json:"subject" example:"Confirm your e-mail address"`
	Text    string `json:"text" example:"Hello Ada, …"`
	HTML    string `json:"html" example:"<!doctype html>…"`
}

// source is a template's three bodies. Built-in HTML bodies are the inside
// of the shared layout (inline CSS); a tenant's HTML is a whole document.
type source struct {
	Subject, Text, HTML string
	Locale              string
	builtin             bool
}

//go:embed templates
var builtinFS embed.FS

// builtinSource returns the built-in template key in locale, if any.
func builtinSource(key, locale string) (source, bool) {
	read := func(ext string) (string, bool) {
		b, err := fs.ReadFile(builtinFS, "templates/"+locale+"/"+key+"."+ext)
		return string(b), err == nil
	}
	subject, ok := read("subject")
	if !ok {
		return source{}, false
	}
	text, _ := read("txt")
	html, _ := read("html")
	return source{Subject: strings.TrimSpace(subject), Text: text, HTML: html, Locale: locale, builtin: true}, true
}

// localeChain is the order locales are tried in: de-AT, de, the tenant's
// default (and its language), en.
func localeChain(locale, tenantDefault string) []string {
	var out []string
	add := func(l string) {
		for l != "" {
			seen := false
			for _, o := range out {
				seen = seen || strings.EqualFold(o, l)
			}
			if !seen {
				out = append(out, l)
			}
			i := strings.LastIndex(l, "-")
			if i < 0 {
				return
			}
			l = l[:i]
		}
	}
	add(locale)
	add(tenantDefault)
	add("en")
	return out
}

// funcs are the functions templates may call (docs/notifications.md).
var funcs = map[string]any{
	"upper": strings.ToUpper,
	"dict":  dict,
	"lower": strings.ToLower,
	"default": func(def, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
	"date": func(layout string, v any) string {
		switch t := v.(type) {
		case nil:
			return ""
		case time.Time:
			return t.UTC().Format(layout)
		case string:
			if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
				return p.UTC().Format(layout)
			}
			return t
		}
		return fmt.Sprint(v)
	},
}

// dict builds a map from key, value pairs, to pass several values to a
// sub-template ({{template "button" (dict "link" .link "label" "Open")}}).
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict needs key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict keys must be strings")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

//go:embed layout.html
var layoutHTML string

// parseTenantHTML parses a tenant's HTML, a whole document, with the
// layout's partials ({{template "button" …}}) defined, as the built-in
// bodies a tenant starts from use them. The partials are parsed first, so
// a tenant's own definitions win, and apart, so errors keep the tenant's
// line numbers.
func parseTenantHTML(name, body string) (*htmltemplate.Template, error) {
	t := htmltemplate.New(name).Funcs(funcs)
	if i := strings.Index(layoutHTML, "{{define "); i >= 0 {
		if _, err := t.New("layout partials").Parse(layoutHTML[i:]); err != nil {
			return nil, err
		}
	}
	return t.Parse(body)
}

// parsed holds a source's compiled templates.
type parsed struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

// compile compiles src; errors name the part (subject, text, html) and carry
// the line and column text/template reports.
func compile(src source) (parsed, error) {
	var p parsed
	var err error
	if p.subject, err = texttemplate.New("subject").Funcs(funcs).Parse(src.Subject); err != nil {
		return p, &ParseError{Part: "subject", Err: err}
	}
	if p.text, err = texttemplate.New("text").Funcs(funcs).Parse(src.Text); err != nil {
		return p, &ParseError{Part: "text", Err: err}
	}
	if src.builtin {
		p.html, err = htmltemplate.New("html").Funcs(funcs).Parse(layoutHTML + `{{define "content"}}` + src.HTML + `{{end}}`)
	} else {
		p.html, err = parseTenantHTML("html", src.HTML)
	}
	if err != nil {
		return p, &ParseError{Part: "html", Err: err}
	}
	return p, nil
}

// compiledCache keeps compiled templates by their text: parsing costs
// more than rendering, and the same few templates render again and again.
var compiledCache = struct {
	sync.Mutex
	m map[source]parsed
}{m: map[source]parsed{}}

// compiled is compile through the cache (bounded: emptied when full).
func compiled(src source) (parsed, error) {
	compiledCache.Lock()
	p, ok := compiledCache.m[src]
	compiledCache.Unlock()
	if ok {
		return p, nil
	}
	p, err := compile(src)
	if err != nil {
		return p, err
	}
	compiledCache.Lock()
	defer compiledCache.Unlock()
	if len(compiledCache.m) >= 1000 {
		clear(compiledCache.m)
	}
	compiledCache.m[src] = p
	return p, nil
}

// ParseError is a template that does not compile.
type ParseError struct {
	Part string // subject, text or html
	Err  error
}

func (e *ParseError) Error() string { return e.Part + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

const noValue = "<no value>"

// execute renders p against data.
func (p parsed) execute(data map[string]any) (Rendered, error) {
	var r Rendered
	var b bytes.Buffer
	if err := p.subject.Execute(&b, data); err != nil {
		return r, fmt.Errorf("rendering subject: %w", err)
	}
	// A variable the data lacks prints "<no value>" in text/template
	// (html/template prints nothing): never show that to a recipient.
	r.Subject = strings.Join(strings.Fields(strings.ReplaceAll(b.String(), noValue, "")), " ") // one header line
	b.Reset()
	if err := p.text.Execute(&b, data); err != nil {
		return r, fmt.Errorf("rendering text: %w", err)
	}
	r.Text = strings.ReplaceAll(b.String(), noValue, "")
	b.Reset()
	if err := p.html.Execute(&b, data); err != nil {
		return r, fmt.Errorf("rendering html: %w", err)
	}
	r.HTML = b.String()
	return r, nil
}

// templateData is what a template sees: the message's data plus the
// recipient.
func templateData(d Delivery) map[string]any {
	out := make(map[string]any, len(d.Data)+1)
	for k, v := range d.Data {
		out[k] = v
	}
	if _, ok := out["recipient"]; !ok {
		out["recipient"] = map[string]any{"name": d.To.Name, "email": d.To.Email}
	}
	return out
}

// Render renders template key for a tenant in the first locale of the
// chain that has it (the tenant's own version before the built-in one).
func (s *Service) Render(ctx context.Context, tenant, key, locale string, data map[string]any) (Rendered, error) {
	src, err := s.findSource(ctx, tenant, key, locale)
	if err != nil {
		return Rendered{}, err
	}
	p, err := compiled(src)
	if err != nil {
		return Rendered{}, fmt.Errorf("template %s (%s): %w", key, src.Locale, err)
	}
	r, err := p.execute(data)
	if err != nil {
		return r, fmt.Errorf("template %s (%s): %w", key, src.Locale, err)
	}
	r.Locale = src.Locale
	return r, nil
}

// ErrNoTemplate is returned when neither the tenant nor the built-ins have
// a template for the key in any locale of the chain.
var ErrNoTemplate = fmt.Errorf("no such template")

func (s *Service) findSource(ctx context.Context, tenant, key, locale string) (source, error) {
	def, err := s.defaultLocale(ctx, tenant)
	if err != nil {
		return source{}, err
	}
	for _, l := range localeChain(locale, def) {
		src, ok, err := s.tenantSource(ctx, tenant, key, l)
		if err != nil || ok {
			return src, err
		}
		if src, ok := builtinSource(key, l); ok {
			return src, nil
		}
	}
	return source{}, fmt.Errorf("template %s: %w", key, ErrNoTemplate)
}
