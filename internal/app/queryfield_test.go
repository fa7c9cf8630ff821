package app_test

import (
	"net/url"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// TestQueryProblemsNameTheQueryParameter: a problem with a query
// parameter names it as query.<name> (docs/http.md), whether huma or the
// domain code found it, so a client can put the message next to the
// control that set it.
func TestQueryProblemsNameTheQueryParameter(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	for _, c := range []struct{ path, code, field string }{
		{"/api/v1/invoices?status=bogus", "", "query.status"},
		{"/api/v1/events?limit=5000", "", "query.limit"},
		{"/api/v2/events?filter=" + url.QueryEscape("{nope"), "invalid_filter", "query.filter"},
	} {
		r := a.do("GET", c.path, a.key, nil)
		if r.status != 400 {
			t.Fatalf("%s: status %d, want 400: %s", c.path, r.status, r.body)
		}
		p := r.json(t)
		if c.code != "" && p["code"] != c.code {
			t.Errorf("%s: code %v, want %s", c.path, p["code"], c.code)
		}
		errs, _ := p["errors"].([]any)
		if len(errs) == 0 {
			t.Fatalf("%s: no field errors: %s", c.path, r.body)
		}
		if f := errs[0].(map[string]any)["field"]; f != c.field {
			t.Errorf("%s: field %v, want %s", c.path, f, c.field)
		}
	}
}
