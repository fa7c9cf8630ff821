package httpapi_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type widget struct {
	Name string `json:"name"`
}

// A recorded example shows on bodies of its type, as a one-item page on
// lists and slices of it; an operation's own example wins over it.
func TestExamplesFollowTypes(t *testing.T) {
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	w := widget{Name: "gear"}
	s.Example(w)
	s.OperationExample("GET", "/own", nil, widget{Name: "own"})
	reply := func(context.Context, *struct{}) (*httpapi.Body[widget], error) { return nil, nil }
	httpapi.Register(s, huma.Operation{OperationID: "create", Method: "POST", Path: "/widgets"}, abacus.ScopeWrite,
		func(context.Context, *httpapi.Body[widget]) (*httpapi.Body[widget], error) { return nil, nil })
	httpapi.Register(s, huma.Operation{OperationID: "list", Method: "GET", Path: "/widgets"}, abacus.ScopeRead,
		func(context.Context, *struct{}) (*httpapi.Body[abacus.List[widget]], error) { return nil, nil })
	httpapi.Register(s, huma.Operation{OperationID: "all", Method: "GET", Path: "/all"}, abacus.ScopeRead,
		func(context.Context, *struct{}) (*httpapi.Body[[]widget], error) { return nil, nil })
	httpapi.Register(s, huma.Operation{OperationID: "own", Method: "GET", Path: "/own"}, abacus.ScopeRead, reply)

	paths := s.API.OpenAPI().Paths
	example := func(op *huma.Operation, status string) any {
		t.Helper()
		return op.Responses[status].Content["application/json"].Example
	}
	create := paths["/widgets"].Post
	if got := create.RequestBody.Content["application/json"].Example; got != w {
		t.Errorf("request example %v, want %v", got, w)
	}
	if got := example(create, "200"); got != w {
		t.Errorf("response example %v, want %v", got, w)
	}
	if got, ok := example(paths["/widgets"].Get, "200").(abacus.List[widget]); !ok || len(got.Data) != 1 || got.Data[0] != w || got.NextCursor != "" {
		t.Errorf("list example %#v", example(paths["/widgets"].Get, "200"))
	}
	if got, ok := example(paths["/all"].Get, "200").([]widget); !ok || len(got) != 1 || got[0] != w {
		t.Errorf("slice example %#v", example(paths["/all"].Get, "200"))
	}
	if got := example(paths["/own"].Get, "200"); got != (widget{Name: "own"}) {
		t.Errorf("the operation's own example %v, want it over the type's", got)
	}
}
