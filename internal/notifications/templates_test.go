package notifications

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	texttemplate "text/template"

	"github.com/abacusbilling/abacus"
)

func TestEveryBuiltinRendersItsSampleWithEveryVariablePresent(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{}
	err := fs.WalkDir(builtinFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".subject") {
			keys[strings.TrimSuffix(strings.TrimPrefix(path, "templates/en/"), ".subject")] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range Samples() {
		if !keys[key] {
			t.Errorf("%s has sample data but no built-in template", key)
		}
	}
	for key := range keys {
		sample := sampleFor(key)
		if sample == nil {
			t.Errorf("%s: no sample data (docs/notifications.md lists its variables from it)", key)
			continue
		}
		src, _ := builtinSource(key, "en")
		// The parts alone, strictly: a variable the sample lacks fails.
		for part, body := range map[string]string{"subject": src.Subject, "text": src.Text} {
			tpl, err := texttemplate.New(part).Funcs(funcs).Option("missingkey=error").Parse(body)
			if err == nil {
				err = tpl.Execute(&bytes.Buffer{}, sample)
			}
			if err != nil {
				t.Errorf("%s %s: %v", key, part, err)
			}
		}
		if msg := checkPart("html", layoutHTML+`{{define "content"}}`+src.HTML+`{{end}}`, true, nil); msg != "" {
			t.Errorf("%s html: %s", key, msg)
		}
		p, err := compile(src)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		r, err := p.execute(sample)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if r.Subject == "" || strings.Contains(r.Subject+r.Text+r.HTML, "no value") || !strings.Contains(r.HTML, "<table role=\"presentation\"") ||
			!strings.Contains(r.HTML, `style="`) || strings.Contains(r.HTML, "<style") {
			t.Errorf("%s rendered badly: %q\n%s\n%s", key, r.Subject, r.Text, r.HTML)
		}
	}
}

func TestSavingReportsProblemsWithLineAndColumn(t *testing.T) {
	t.Parallel()
	sample := sampleFor("invoice.finalized")
	cases := []struct {
		name string
		in   NotificationTemplateInput
		want map[string]string // field → message prefix
	}{
		{"syntax error", NotificationTemplateInput{Subject: "Invoice", Text: "Hello\nyour {{if .invoice.number}}invoice", HTML: "<p>ok</p>"},
			map[string]string{"text": "line 2, column 6: "}},
		{"unclosed action", NotificationTemplateInput{Subject: "Invoice {{.invoice.number", Text: "x", HTML: "x"},
			map[string]string{"subject": "line 1, column 9: "}},
		{"unknown function", NotificationTemplateInput{Subject: "Invoice", Text: "x", HTML: "<p>\n  {{ shout .invoice.number }}</p>"},
			map[string]string{"html": `line 2, column 6: function "shout" is not defined`}},
		{"unknown variable", NotificationTemplateInput{Subject: "Invoice", Text: "Hi {{.customer.name}},\n{{.invoice.nummer}}", HTML: "x"},
			map[string]string{"text": "line 2, column 11: "}},
		{"too large", NotificationTemplateInput{Subject: "Invoice", Text: "x", HTML: strings.Repeat("a", MaxHTMLBytes+1)},
			map[string]string{"html": "is 262145 bytes"}},
		{"no subject", NotificationTemplateInput{Subject: " ", Text: "x", HTML: "x"}, map[string]string{"subject": "is required"}},
	}
	for _, c := range cases {
		err := validateTemplate(c.in, sample)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		e := err.(interface{ Error() string })
		got := map[string]string{}
		for _, f := range asFields(err) {
			got[f.Field] = f.Message
		}
		for field, prefix := range c.want {
			if !strings.HasPrefix(got[field], prefix) {
				t.Errorf("%s: %s = %q, want prefix %q (%v)", c.name, field, got[field], prefix, e)
			}
		}
	}
	ok := NotificationTemplateInput{Subject: "Invoice {{.invoice.number}}", Text: "{{.customer.name}} {{upper .tenant.name}}",
		HTML: "<p>{{.invoice.total}}</p>"}
	if err := validateTemplate(ok, sample); err != nil {
		t.Fatalf("a good template was refused: %v", err)
	}
}

func asFields(err error) []struct{ Field, Message string } {
	var out []struct{ Field, Message string }
	if e, ok := abacusError(err); ok {
		for _, f := range e.Fields {
			out = append(out, struct{ Field, Message string }{f.Field, f.Message})
		}
	}
	return out
}

func abacusError(err error) (*abacus.Error, bool) { return abacus.AsError(err) }

// A built-in's HTML, saved unchanged as the tenant's own, validates and
// renders: the layout's partials (button) are there for tenant templates
// too, and a tenant may still define its own.
func TestTenantHTMLMayUseTheLayoutPartials(t *testing.T) {
	t.Parallel()
	sample := map[string]any{"link": "https://app.example/accept"}
	body := `<p>Hi</p>{{template "button" (dict "link" .link "label" "Accept the invitation")}}`
	if msg := checkPart("html", body, true, sample); msg != "" {
		t.Fatalf("a tenant template using the button partial: %s", msg)
	}
	p, err := compile(source{Subject: "s", Text: "t", HTML: body})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.execute(sample)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.HTML, `href="https://app.example/accept"`) || !strings.Contains(r.HTML, "Accept the invitation") {
		t.Fatalf("the button was not rendered: %s", r.HTML)
	}
	own := `{{define "button"}}<a href="{{.link}}">mine</a>{{end}}<p>Hi</p>{{template "button" (dict "link" .link)}}`
	p, err = compile(source{Subject: "s", Text: "t", HTML: own})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = p.execute(sample); err != nil || !strings.Contains(r.HTML, ">mine</a>") {
		t.Fatalf("the tenant's own button lost: %v %s", err, r.HTML)
	}
}

// A send_invoice reminder (dunning of an invoice paid by the hosted page)
// says the invoice is overdue and its button opens the pay link, not the
// card retry text.
func TestRetryReminderOfASendInvoiceInvoice(t *testing.T) {
	sample := with(sampleFor("payment.retry_reminder"), map[string]any{"collection_method": "send_invoice", "retry_at": nil,
		"link": "https://billing.acme.example/pay/pl_abc"})
	src, _ := builtinSource("payment.retry_reminder", "en")
	p, err := compile(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.execute(sample)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Final notice: invoice INV-2026-0007 is overdue" || !strings.Contains(r.Text, "here: https://billing.acme.example/pay/pl_abc") ||
		!strings.Contains(r.Text, "by 8 Nov 2026") || !strings.Contains(r.HTML, "Pay this invoice") || strings.Contains(r.Text+r.HTML, "try") {
		t.Errorf("send_invoice reminder:\n%s\n%s\n%s", r.Subject, r.Text, r.HTML)
	}
}
