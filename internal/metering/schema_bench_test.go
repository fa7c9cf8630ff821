package metering

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
)

// typicalSchema is what a tenant would register for typicalEvent's data.
const typicalSchema = `{"type":"object","required":["tokens","model"],"additionalProperties":false,
	"properties":{"tokens":{"type":"integer","minimum":0},"model":{"type":"string","enum":["gpt-4","gpt-3"]}}}`

// BenchmarkDecodeChecked1000 prices the schema check: a 1000-event batch
// decoded as before (DecodeEvents), through DecodeEventsChecked without a
// check (a tenant with no schema), and with the tenant's schema for the
// events' type, beside the first version (encoding/json tree).
func BenchmarkDecodeChecked1000(b *testing.B) {
	body := typicalBatch(1000)
	s, err := CompileSchema([]byte(typicalSchema))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		check DataCheck
	}{{"unchecked", nil}, {"no_schema_for_type", Schemas{"other": s}.Check}, {"schema", Schemas{"api_request": s}.Check},
		// The first version: the library's encoding/json-based tree.
		{"schema_encoding_json_tree", func(i int, ev *Event, v *abacus.Validation) {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.Data))
			if err == nil {
				err = s.s.Validate(inst)
			}
			if err != nil {
				v.AddAt(i, "data", "%v", err)
			}
		}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeEventsChecked("application/json", body, testNow, Limits{}, c.check); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
		})
	}
}
