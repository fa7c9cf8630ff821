package metering

import (
	"errors"
	"testing"
	"time"
)

func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 10, 11, 59, 0, 123456789, time.UTC)
	evs := []Event{
		{TenantID: "ten_1", ID: "a", Source: "api", SpecVersion: "1.0", Type: "req", Subject: "cus_1", Time: at, ReceivedAt: testNow, Data: []byte(`{"n":1}`)},
		{TenantID: "ten_1", ID: "b", Source: "api", SpecVersion: "1.0", Type: "req", Subject: "cus_2", Time: at.Add(-400 * 24 * time.Hour), ReceivedAt: testNow, DataContentType: "application/json", DataSchema: "https://x/s"},
		{TenantID: "ten_2", ID: "", Source: "", SpecVersion: "1.0", Type: "req", Subject: "cus_2", Time: time.Unix(-5, 7).UTC(), ReceivedAt: testNow, Data: []byte{}},
	}
	b := EncodeBatch(evs)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("got %d events", len(got))
	}
	for i := range evs {
		w, g := evs[i], got[i]
		if w.TenantID != g.TenantID || w.ID != g.ID || w.Source != g.Source || w.SpecVersion != g.SpecVersion || w.Type != g.Type ||
			w.Subject != g.Subject || w.DataContentType != g.DataContentType || w.DataSchema != g.DataSchema ||
			!w.Time.Equal(g.Time) || !w.ReceivedAt.Equal(g.ReceivedAt) || string(w.Data) != string(g.Data) || (w.Data == nil) != (g.Data == nil) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for i := range b {
		b[i] = 0 // decoded events must not alias the message
	}
	if got[0].ID != "a" || string(got[0].Data) != `{"n":1}` {
		t.Errorf("decoded events alias the input")
	}
	for _, bad := range [][]byte{nil, {9}, {1}, {1, 200}, EncodeBatch(evs)[:20], append(EncodeBatch(evs), 0)} {
		if _, err := DecodeBatch(bad); !errors.Is(err, ErrBadBatch) {
			t.Errorf("DecodeBatch(%x) = %v, want ErrBadBatch", bad, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch([]Event{{TenantID: "t", ID: "a", Data: []byte(`{}`)}, {TenantID: "t", ID: "b"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeBatch(b)
		if err != nil {
			return
		}
		again, err := DecodeBatch(EncodeBatch(evs))
		if err != nil || len(again) != len(evs) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func TestAppendBatchAtAndAppendDecoded(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 10, 11, 59, 0, 0, time.UTC)
	evs := []Event{
		{TenantID: "ten_1", ID: "a", Source: "api", SpecVersion: "1.0", Type: "req", Subject: "cus_1", Time: at, ReceivedAt: testNow},
		{TenantID: "ten_1", ID: "b", Source: "api", SpecVersion: "1.0", Type: "req", Subject: "cus_2", Time: at, ReceivedAt: testNow, Data: []byte(`{"n":2}`)},
		{TenantID: "ten_1", ID: "c", Source: "api", SpecVersion: "1.0", Type: "req", Subject: "cus_3", Time: at, ReceivedAt: testNow, TimeAssigned: true},
	}
	b := AppendBatchAt([]byte("junk"), evs, []int32{2, 0})[4:]
	dst := []Event{{ID: "kept"}}
	got, err := AppendDecoded(dst, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "kept" || got[1].ID != "c" || !got[1].TimeAssigned || got[2].ID != "a" || got[2].Subject != "cus_1" || got[2].TimeAssigned {
		t.Fatalf("got %+v", got)
	}
	if got, err := AppendDecoded(dst, b[:len(b)-1]); !errors.Is(err, ErrBadBatch) || len(got) != 1 {
		t.Errorf("truncated: got %d events, err %v; want the 1 given and ErrBadBatch", len(got), err)
	}
}
