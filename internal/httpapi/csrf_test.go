package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/abacusbilling/abacus/internal/httpapi"
)

// TestCSRFProblem: a state-changing request authenticated by a session
// cookie must repeat the CSRF cookie in the header and come from this
// host; reads, bearer requests and requests without a session cookie are
// not concerned.
func TestCSRFProblem(t *testing.T) {
	t.Parallel()
	const tok = "0123456789abcdef0123"
	session := &http.Cookie{Name: httpapi.AccessCookie, Value: "jwt"}
	refresh := &http.Cookie{Name: httpapi.RefreshCookie, Value: "rt_x"}
	csrf := &http.Cookie{Name: httpapi.CSRFCookie, Value: tok}
	portal := &http.Cookie{Name: httpapi.PortalCookie, Value: "aps_x"}
	for _, c := range []struct {
		name    string
		method  string
		cookies []*http.Cookie
		headers map[string]string
		refused bool
	}{
		{"read with cookies", "GET", []*http.Cookie{session}, nil, false},
		{"post without session cookie", "POST", []*http.Cookie{csrf}, nil, false},
		{"post with bearer", "POST", []*http.Cookie{session}, map[string]string{"Authorization": "Bearer abk_x"}, false},
		{"post with cookie, no header", "POST", []*http.Cookie{session, csrf}, nil, true},
		{"refresh cookie alone counts", "POST", []*http.Cookie{refresh, csrf}, nil, true},
		{"portal cookie counts", "POST", []*http.Cookie{portal, csrf}, nil, true},
		{"portal cookie with matching header", "PATCH", []*http.Cookie{portal, csrf}, map[string]string{httpapi.CSRFHeader: tok}, false},
		{"header without cookie", "DELETE", []*http.Cookie{session}, map[string]string{httpapi.CSRFHeader: tok}, true},
		{"header differs", "PUT", []*http.Cookie{session, csrf}, map[string]string{httpapi.CSRFHeader: tok + "x"}, true},
		{"short token", "POST", []*http.Cookie{session, {Name: httpapi.CSRFCookie, Value: "ab"}}, map[string]string{httpapi.CSRFHeader: "ab"}, true},
		{"matching header", "PATCH", []*http.Cookie{session, csrf}, map[string]string{httpapi.CSRFHeader: tok}, false},
		{"matching header, same origin", "POST", []*http.Cookie{session, csrf}, map[string]string{httpapi.CSRFHeader: tok, "Origin": "http://example.com"}, false},
		{"matching header, other origin", "POST", []*http.Cookie{session, csrf}, map[string]string{httpapi.CSRFHeader: tok, "Origin": "https://evil.example"}, true},
	} {
		r := httptest.NewRequest(c.method, "http://example.com/api/v1/customers", nil)
		for _, k := range c.cookies {
			r.AddCookie(k)
		}
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		p := httpapi.CSRFProblem(r)
		if (p != nil) != c.refused || (p != nil && (p.Status != 403 || p.Code != "csrf_failed")) {
			t.Errorf("%s: %+v, want refused %v", c.name, p, c.refused)
		}
	}
}
