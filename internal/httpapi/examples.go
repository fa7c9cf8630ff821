package httpapi

import (
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Example records each v as the example the OpenAPI document shows for
// request and response bodies of v's type: Register and HandleOp put it on
// every operation whose body has that type, and a one-item page on the
// lists (abacus.List) and slices of it. Examples are Go values, so the
// compiler keeps them in step with the types they show. Call it before
// registering the routes that use them.
func (s *Server) Example(vs ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		s.examples[reflect.TypeOf(v)] = v
	}
}

// OperationExample records request and response (either may be nil) as
// the examples of the operation of method and path, for bodies whose Go
// type says nothing (raw bytes, any). They win over Example's. Call it
// before registering the operation.
func (s *Server) OperationExample(method, path string, request, response any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opExamples[method+" "+path] = [2]any{request, response}
}

// exampleOf returns the recorded example of t, built for a list or slice
// from the example of its items; nil when there is none.
func (s *Server) exampleOf(t reflect.Type) any {
	s.mu.Lock()
	v, ok := s.examples[t]
	s.mu.Unlock()
	if ok {
		return v
	}
	switch {
	case t.Kind() == reflect.Pointer:
		return s.exampleOf(t.Elem())
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		item := s.exampleOf(t.Elem())
		if item == nil {
			return nil
		}
		out := reflect.MakeSlice(t, 1, 1)
		out.Index(0).Set(reflect.ValueOf(item))
		return out.Interface()
	case isList(t):
		data := s.exampleOf(t.Field(0).Type)
		if data == nil {
			return nil
		}
		out := reflect.New(t).Elem()
		out.Field(0).Set(reflect.ValueOf(data))
		return out.Interface()
	}
	return nil
}

// isList reports whether t is an abacus.List.
func isList(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == "github.com/abacusbilling/abacus" && strings.HasPrefix(t.Name(), "List[")
}

// bodyType returns the type of the Body field of an operation's input or
// output struct t, nil when it has none.
func bodyType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	f, ok := t.FieldByName("Body")
	if !ok {
		return nil
	}
	return f.Type
}

// addExamples puts the recorded examples of the request body type in and
// the response body type out on the operation registered for method and
// path, where it has none yet (an example set on the operation wins).
func (s *Server) addExamples(method, path string, in, out reflect.Type) {
	op := s.operation(method, path)
	if op == nil {
		return
	}
	s.mu.Lock()
	own := s.opExamples[method+" "+path]
	s.mu.Unlock()
	if op.RequestBody != nil {
		setExample(op.RequestBody.Content, own[0])
		if in != nil {
			setExample(op.RequestBody.Content, s.exampleOf(in))
		}
	}
	var ex any
	if out != nil {
		ex = s.exampleOf(out)
	}
	for code, r := range op.Responses {
		if strings.HasPrefix(code, "2") && r != nil {
			setExample(r.Content, own[1])
			setExample(r.Content, ex)
		}
	}
}

// setExample shows ex for each media type of content that has no example.
func setExample(content map[string]*huma.MediaType, ex any) {
	if ex == nil {
		return
	}
	for _, m := range content {
		if m != nil && m.Example == nil && len(m.Examples) == 0 {
			m.Example = ex
		}
	}
}

// operation returns the documented operation of method and path.
func (s *Server) operation(method, path string) *huma.Operation {
	item := s.API.OpenAPI().Paths[path]
	if item == nil {
		return nil
	}
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	case http.MethodDelete:
		return item.Delete
	}
	return nil
}
