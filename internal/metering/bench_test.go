package metering

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// typicalEvent is about 170 bytes, the size the design brief measures.
func typicalEvent(i int) string {
	return `{"specversion":"1.0","id":"evt-` + strconv.Itoa(100000+i) + `","source":"api-gw","type":"api_request","subject":"cus_42","time":"2026-03-10T11:59:00Z","data":{"tokens":` + strconv.Itoa(i%500) + `,"model":"gpt-4"}}`
}

func typicalBatch(n int) []byte {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = typicalEvent(i)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// stdEvent is what a struct-based decoder would fill.
type stdEvent struct {
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	SpecVersion string          `json:"specversion"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject"`
	Time        string          `json:"time"`
	Data        json.RawMessage `json:"data"`
}

func BenchmarkDecodeOne(b *testing.B) {
	body := []byte(typicalEvent(1))
	b.Run("abacus", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := DecodeEvents("application/cloudevents+json", body, testNow, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var e stdEvent
			if err := json.Unmarshal(body, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var e stdEvent
			if err := gojson.Unmarshal(body, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeBatch1000(b *testing.B) {
	body := typicalBatch(1000)
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
	}
	b.Run("abacus", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := DecodeEvents("application/json", body, testNow, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var e []stdEvent
			if err := json.Unmarshal(body, &e); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("goccy", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var e []stdEvent
			if err := gojson.Unmarshal(body, &e); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

func BenchmarkAggregateSum1000(b *testing.B) {
	evs, err := DecodeEvents("application/json", typicalBatch(1000), testNow, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range evs {
		evs[i].TenantID = "ten_1"
	}
	m, err := Compile(Meter{ID: "mtr_1", Slug: "tokens", EventType: "api_request", Aggregation: AggSum, ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}})
	if err != nil {
		b.Fatal(err)
	}
	set := NewMeterSet("ten_1", m)
	a := NewAggregator()
	for b.Loop() {
		a.Reset()
		if out := a.Add(set, evs); out.Folded != 1000 {
			b.Fatalf("folded %d", out.Folded)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
}

func BenchmarkBatchWire1000(b *testing.B) {
	evs, err := DecodeEvents("application/json", typicalBatch(1000), testNow, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range evs {
		evs[i].TenantID = "ten_1"
	}
	msg := EncodeBatch(evs)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			EncodeBatch(evs)
		}
		b.ReportMetric(float64(len(msg))/1000, "bytes/event")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeBatch(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
	})
}
