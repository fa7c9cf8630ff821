package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	gojson "github.com/goccy/go-json"
)

// jsonFormat is huma's JSON format with a faster encoder for responses:
// goccy/go-json writes what encoding/json writes (TestResponsesEncodeAsEncodingJSON
// holds it to that) in about half the time. Request bodies are still
// decoded by encoding/json, whose strictness and error messages the
// validation problems rely on.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		enc := gojson.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	},
	Unmarshal: json.Unmarshal,
}

// EncodeJSON returns v encoded exactly as a Register route's response
// body is (jsonFormat, newline-terminated), for raw routes that answer
// what a huma operation would.
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := jsonFormat.Marshal(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSON answers 200 with body, JSON that a raw route (HandleOp)
// encoded. Its length is given, so a body past net/http's 2 KiB buffer
// goes out whole instead of in chunks.
func WriteJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// jsonContentType is shared so that setting it allocates nothing;
// net/http only reads it.
var jsonContentType = []string{"application/json"}
