package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type loginIn struct {
	Body struct {
		Email    string `json:"email" format:"email"`
		Password string `json:"password" minLength:"8"`
		Profile  struct {
			Name string `json:"name"`
		} `json:"profile,omitempty"`
		Tags []struct {
			Key string `json:"key"`
		} `json:"tags,omitempty"`
	}
}

type listIn struct {
	Limit  int    `query:"limit"`
	Cursor string `query:"cursor"`
}

// inputServer has a login-like route, a list route and a raw-body schema
// route, as the modules register them.
func inputServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	httpapi.Register(s, huma.Operation{OperationID: "login", Method: "POST", Path: "/login"}, httpapi.ScopePublic,
		func(_ context.Context, in *loginIn) (*struct{ Body map[string]any }, error) {
			return &struct{ Body map[string]any }{Body: map[string]any{"email": in.Body.Email}}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "list", Method: "GET", Path: "/things"}, httpapi.ScopePublic,
		func(_ context.Context, in *listIn) (*struct{ Body []string }, error) {
			return &struct{ Body []string }{Body: []string{}}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "schema", Method: "PUT", Path: "/schema"}, httpapi.ScopePublic,
		func(_ context.Context, in *struct {
			RawBody []byte `contentType:"application/schema+json"`
		}) (*struct{ Body json.RawMessage }, error) {
			return &struct{ Body json.RawMessage }{Body: in.RawBody}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "refuse", Method: "POST", Path: "/refuse"}, httpapi.ScopePublic,
		func(context.Context, *struct{}) (*struct{}, error) {
			var v abacus.Validation
			v.Add("", "the request as a whole is refused")
			return nil, v.Err("refused")
		})
	httpapi.Register(s, huma.Operation{OperationID: "convert", Method: "POST", Path: "/convert"}, httpapi.ScopePublic,
		func(_ context.Context, in *struct {
			RawBody []byte `contentType:"application/xml"`
		}) (*struct{ Body string }, error) {
			return &struct{ Body string }{Body: string(in.RawBody)}, nil
		})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   string
	p      struct {
		Code      string              `json:"code"`
		Detail    string              `json:"detail"`
		RequestID string              `json:"request_id"`
		Errors    []abacus.FieldError `json:"errors"`
	}
}

func send(t *testing.T, srv *httptest.Server, method, path, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.p)
	return a
}

// fields returns the field of each error, failing on a problem without
// request_id or with an error that names no field.
func (a answer) fields(t *testing.T) []string {
	t.Helper()
	if a.p.RequestID == "" || len(a.p.Errors) == 0 {
		t.Errorf("problem without request_id or field errors: %d %s", a.status, a.body)
	}
	var out []string
	for _, e := range a.p.Errors {
		if e.Field == "" {
			t.Errorf("field error without a field: %s", a.body)
		}
		out = append(out, e.Field)
	}
	return out
}

// The login reproduction of issue 12: validation problems name their
// field and request, and never show a submitted secret or the body.
func TestProblemsNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	srv := inputServer(t)
	const secret = "correct horse battery staple"
	for _, body := range []string{
		`{"email":"a@example.com","password":"` + secret + `","remember":true}`,
		`{"email":"a@example.com","password":["` + secret + `"]}`,
		`{"email":"a@example.com","password":"` + secret + `","tags":[{"key":"` + secret + `","x":1}]}`,
		`{"email":"a@example.com","password":"` + secret + `",}`,
		`{"email":"a@example.com","profile":{"name":"` + secret + `","api_key":"` + secret + `"}}`,
		`["` + secret + `"]`,
	} {
		a := send(t, srv, "POST", "/login", "application/json", body)
		if a.status != 400 {
			t.Errorf("%s: %d %s, want 400", body, a.status, a.body)
		}
		if strings.Contains(a.body, "horse") {
			t.Errorf("%s: the answer shows the secret: %s", body, a.body)
		}
		a.fields(t)
	}
	a := send(t, srv, "POST", "/login", "application/json", `{"email":"a@example.com","password":"`+secret+`","remember":true}`)
	if f := a.fields(t); len(f) != 1 || f[0] != "remember" {
		t.Errorf("unknown field: fields %v, want [remember]: %s", f, a.body)
	}
	a = send(t, srv, "POST", "/refuse", "", "")
	if f := a.fields(t); a.status != 400 || len(f) != 1 || f[0] != "body" {
		t.Errorf("a handler's field-less error: %d %s", a.status, a.body)
	}
	a = send(t, srv, "POST", "/login", "application/json", `{"email":"a@example.com","tags":[{}]}`)
	if f := a.fields(t); strings.Join(f, ",") != "password,tags[0].key" {
		t.Errorf("missing fields: fields %v, want [password tags[0].key]: %s", f, a.body)
	}
}

func TestJSONBodiesAreChecked(t *testing.T) {
	t.Parallel()
	srv := inputServer(t)
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code, field                           string
	}{
		{"text/plain", "PUT", "/schema", "text/plain", `{"type":"object"}`, 415, "unsupported_media_type", "header.Content-Type"},
		{"form", "POST", "/login", "application/x-www-form-urlencoded", `email=a`, 415, "unsupported_media_type", "header.Content-Type"},
		{"latin-1", "POST", "/login", "application/json; charset=iso-8859-1", `{}`, 415, "unsupported_media_type", "header.Content-Type"},
		{"invalid UTF-8 in a raw body", "PUT", "/schema", "application/schema+json", "{\"title\":\"a\xffb\"}", 400, "invalid_utf8", "title"},
		{"invalid UTF-8 in a nested key", "POST", "/login", "application/json", "{\"profile\":{\"n\xc3\":1}}", 400, "invalid_utf8", "profile.n\ufffd"},
		{"duplicate key", "PUT", "/schema", "application/schema+json", `{"type":"object","type":"string"}`, 400, "duplicate_key", "type"},
		{"duplicate nested key", "POST", "/login", "application/json",
			`{"email":"a@example.com","password":"long enough","tags":[{"key":"a"},{"key":"b","key":"c"}]}`, 400, "duplicate_key", "tags[1].key"},
	}
	for _, c := range cases {
		a := send(t, srv, c.method, c.path, c.contentType, c.body)
		f := a.fields(t)
		if a.status != c.status || a.p.Code != c.code || len(f) == 0 || f[0] != c.field || !json.Valid([]byte(a.body)) {
			t.Errorf("%s: %d %s, want %d %s naming %s", c.name, a.status, a.body, c.status, c.code, c.field)
		}
	}
	for _, ct := range []string{"", "application/json", "application/schema+json", "application/merge-patch+json; charset=utf-8"} {
		if a := send(t, srv, "PUT", "/schema", ct, `{"type":"object"}`); a.status != 200 || a.body != `{"type":"object"}`+"\n" {
			t.Errorf("PUT /schema as %q: %d %s", ct, a.status, a.body)
		}
	}
	for ct, status := range map[string]int{"application/xml": 200, "text/xml; charset=utf-8": 200, "application/json": 415} {
		if a := send(t, srv, "POST", "/convert", ct, `<Invoice/>`); a.status != status {
			t.Errorf("POST /convert as %s: %d %s, want %d", ct, a.status, a.body, status)
		}
	}
	if a := send(t, srv, "POST", "/login", "application/vnd.abacus+json", `{"email":"a@example.com","password":"long enough"}`); a.status != 200 {
		t.Errorf("a +json media type: %d %s", a.status, a.body)
	}
}

func TestQueryParametersAreChecked(t *testing.T) {
	t.Parallel()
	srv := inputServer(t)
	a := send(t, srv, "GET", "/things?limit=2&external_id=x&sort=name", "", "")
	if f := a.fields(t); a.status != 400 || a.p.Code != "unknown_query_parameter" || strings.Join(f, ",") != "query.external_id,query.sort" {
		t.Errorf("unknown parameters: %d %s", a.status, a.body)
	}
	for _, c := range []string{"garbage", "cus_", "A", "cus_01JX0000000000000000000000'"} {
		a := send(t, srv, "GET", "/things?cursor="+c, "", "")
		if f := a.fields(t); a.status != 400 || a.p.Code != "invalid_cursor" || f[0] != "query.cursor" {
			t.Errorf("cursor %q: %d %s", c, a.status, a.body)
		}
	}
	if a := send(t, srv, "GET", "/things?limit=2&cursor=cus_01jx0000000000000000000000", "", ""); a.status != 200 {
		t.Errorf("a well-formed cursor: %d %s", a.status, a.body)
	}
	a = send(t, srv, "PUT", "/things", "application/json", `{}`)
	if a.status != 405 || a.header.Get("Allow") != "GET, HEAD" || a.p.Code != "method_not_allowed" || a.p.RequestID == "" {
		t.Errorf("PUT /things: %d Allow %q %s", a.status, a.header.Get("Allow"), a.body)
	}
}

// A handler that outlives huma's body read timeout (5 s by default;
// 100 ms here) keeps its request context: checkInput has read the body
// already, so the deadline huma sets for reading it would instead end the
// connection's background read and cancel the context, and a slow
// password hash on a loaded machine answered 499 client_closed to a
// client that was still waiting.
func TestSlowHandlerOutlivesBodyReadTimeout(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	httpapi.Register(s, huma.Operation{OperationID: "slow", Method: "POST", Path: "/slow", BodyReadTimeout: 100 * time.Millisecond},
		httpapi.ScopePublic, func(ctx context.Context, in *loginIn) (*struct{ Body map[string]any }, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			return &struct{ Body map[string]any }{Body: map[string]any{"email": in.Body.Email}}, nil
		})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	a := send(t, srv, "POST", "/slow", "application/json", `{"email":"ada@example.com","password":"correct horse"}`)
	if a.status != http.StatusOK {
		t.Fatalf("a handler slower than the body read timeout: %d %s, want 200", a.status, a.body)
	}
}
