package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
)

func tenantCtx(tenant string) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

// example reads one of the document package's own examples.
func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "document", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newService(t *testing.T, d *db.DB, store blob.Store) *Service {
	t.Helper()
	return NewService(d, store, abacus.NewFakeClock(time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)), slog.New(slog.DiscardHandler))
}

func newDir(t *testing.T) *blob.Dir {
	t.Helper()
	dir, err := blob.NewDir(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func events(t *testing.T, d *db.DB, tenant string) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND type = 'document.received'`, tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReceiveStoresOnceFlagsDuplicatesAndRenders: a UBL and a CII
// document are received, stored once by content, announced once, listed,
// served as received and in other formats; the same invoice in another
// syntax is flagged as a duplicate; an invalid one is kept with its
// report; unreadable input stores nothing; another tenant sees nothing.
func TestReceiveStoresOnceFlagsDuplicatesAndRenders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newService(t, d, newDir(t))
		ctx := tenantCtx("ten_a")
		ubl := example(t, "examples/invoice-saas-de.xml")
		first, created, err := s.Receive(ctx, ubl, SourceAPI)
		if err != nil || !created {
			t.Fatalf("Receive: %v created=%v", err, created)
		}
		if first.Status != StatusValid || first.Format != document.FormatUBL || first.Number != "WW-2027-00042" || first.SupplierKey == "" || first.DuplicateOf != "" {
			t.Fatalf("received %+v", first)
		}
		again, created, err := s.Receive(ctx, ubl, SourceAPI)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("the same bytes again: %v created=%v id=%s", err, created, again.ID)
		}
		if n := events(t, d, "ten_a"); n != 1 {
			t.Fatalf("%d document.received events, want 1", n)
		}

		// The same invoice as CII: other bytes, same supplier, number and date.
		cii, _, err := document.Convert(ubl, document.FormatCII)
		if err != nil {
			t.Fatal(err)
		}
		dup, created, err := s.Receive(ctx, cii, SourceAPI)
		if err != nil || !created || dup.DuplicateOf != first.ID || dup.Format != document.FormatCII {
			t.Fatalf("CII copy: %v created=%v %+v", err, created, dup)
		}

		// An invalid document is kept, with its report.
		bad := bytes.Replace(ubl, []byte("<cbc:PayableAmount currencyID=\"EUR\">1444.78</cbc:PayableAmount>"), []byte("<cbc:PayableAmount currencyID=\"EUR\">1444.79</cbc:PayableAmount>"), 1)
		if bytes.Equal(bad, ubl) {
			t.Fatal("the example's payable amount changed; update the test")
		}
		inv, _, err := s.Receive(ctx, bad, SourceAPI)
		if err != nil || inv.Status != StatusInvalid || len(inv.Report.Violations) == 0 || inv.Report.Violations[0].Rule != "BR-CO-16" {
			t.Fatalf("invalid document: %v %+v", err, inv.Report)
		}
		if _, err := s.Render(ctx, inv.ID, document.FormatUBL); err == nil {
			t.Error("an invalid document rendered as UBL")
		}

		// Unreadable input: refused, nothing stored.
		for _, junk := range [][]byte{[]byte("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x/>"), []byte("%PDF-1.4\n%%EOF\n"), []byte("hello")} {
			if _, _, err := s.Receive(ctx, junk, SourceAPI); abacus.ErrorKind(err) != abacus.KindInvalid {
				t.Errorf("Receive(%.20q) = %v, want an invalid-input error", junk, err)
			}
		}
		if n := events(t, d, "ten_a"); n != 3 {
			t.Fatalf("%d document.received events, want 3", n)
		}

		list, err := s.List(ctx, ListFilter{Limit: 2})
		if err != nil || len(list.Data) != 2 || list.NextCursor == "" {
			t.Fatalf("List: %v %d %q", err, len(list.Data), list.NextCursor)
		}
		rest, err := s.List(ctx, ListFilter{Cursor: list.NextCursor})
		if err != nil || len(rest.Data) != 1 || rest.NextCursor != "" {
			t.Fatalf("List page 2: %v %+v", err, rest)
		}
		yes := true
		// The CII copy and the invalid copy share supplier, number and date with the first.
		if dups, err := s.List(ctx, ListFilter{Duplicate: &yes}); err != nil || len(dups.Data) != 2 || dups.Data[0].ID != dup.ID || dups.Data[1].DuplicateOf != first.ID {
			t.Fatalf("duplicates: %v %+v", err, dups)
		}
		if invalid, err := s.List(ctx, ListFilter{Status: StatusInvalid}); err != nil || len(invalid.Data) != 1 {
			t.Fatalf("invalid: %v %+v", err, invalid)
		}

		_, orig, err := s.Original(ctx, dup.ID)
		if err != nil || !bytes.Equal(orig, cii) {
			t.Fatalf("Original: %v", err)
		}
		for _, f := range []document.Format{document.FormatUBL, document.FormatJSON, document.FormatPDF, document.FormatFacturX} {
			if out, err := s.Render(ctx, dup.ID, f); err != nil || len(out) == 0 {
				t.Errorf("Render %s: %v", f, err)
			}
		}

		other := tenantCtx("ten_b")
		if _, err := s.Get(other, first.ID); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Errorf("another tenant got the document: %v", err)
		}
		if l, err := s.List(other, ListFilter{}); err != nil || len(l.Data) != 0 {
			t.Errorf("another tenant lists %v %v", l, err)
		}
		// Another tenant receiving the same bytes gets its own document.
		if theirs, created, err := s.Receive(other, ubl, SourceAPI); err != nil || !created || theirs.ID == first.ID || theirs.DuplicateOf != "" {
			t.Errorf("another tenant's copy: %v created=%v %+v", err, created, theirs)
		}
	})
}

// crashingStore writes the object and then fails, as a process killed
// between the object write and the database commit would.
type crashingStore struct{ blob.Store }

func (c crashingStore) Put(ctx context.Context, key string, data []byte) error {
	if err := c.Store.Put(ctx, key, data); err != nil {
		return err
	}
	return errors.New("killed after the object write")
}

// TestReceiveCrashLeavesDocumentAbsentAndReprocessable: a crash after the
// original reached the object store but before the database commit leaves
// no document and no event; receiving the same bytes again stores and
// processes it once.
func TestReceiveCrashLeavesDocumentAbsentAndReprocessable(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dir := newDir(t)
		ctx := tenantCtx("ten_a")
		ubl := example(t, "examples/invoice-saas-de.xml")
		if _, _, err := newService(t, d, crashingStore{dir}).Receive(ctx, ubl, SourceAPI); err == nil {
			t.Fatal("the crash went unnoticed")
		}
		s := newService(t, d, dir)
		if l, err := s.List(ctx, ListFilter{}); err != nil || len(l.Data) != 0 || events(t, d, "ten_a") != 0 {
			t.Fatalf("after the crash: %v %d documents, %d events", err, len(l.Data), events(t, d, "ten_a"))
		}
		doc, created, err := s.Receive(ctx, ubl, SourceAPI)
		if err != nil || !created {
			t.Fatalf("re-processing: %v %v", err, created)
		}
		if _, orig, err := s.Original(ctx, doc.ID); err != nil || !bytes.Equal(orig, ubl) {
			t.Fatalf("original after re-processing: %v", err)
		}
		if n := events(t, d, "ten_a"); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
	})
}

// TestReceiveFacturX: the XML inside a Factur-X PDF is what is normalised;
// the PDF is the original kept.
func TestReceiveFacturX(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newService(t, d, newDir(t))
		ctx := tenantCtx("ten_a")
		pdf, _, err := document.Convert(example(t, "examples/invoice-saas-de.xml"), document.FormatFacturX)
		if err != nil {
			t.Fatal(err)
		}
		doc, _, err := s.Receive(ctx, pdf, SourceEmail)
		if err != nil || doc.Format != document.FormatFacturX || doc.Status != StatusValid || doc.Number != "WW-2027-00042" || doc.Source != SourceEmail {
			t.Fatalf("Factur-X: %v %+v", err, doc)
		}
		if _, orig, err := s.Original(ctx, doc.ID); err != nil || !bytes.Equal(orig, pdf) {
			t.Fatalf("original: %v", err)
		}
	})
}

var discard = slog.New(slog.DiscardHandler)

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func benchDir(b *testing.B) *blob.Dir {
	dir, err := blob.NewDir(filepath.Join(b.TempDir(), "objects"))
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchDoc is a 20-line invoice numbered INV-BENCH.
func benchDoc(b *testing.B) *document.Document {
	data, err := os.ReadFile(filepath.Join("..", "document", "testdata", "examples", "invoice-saas-de.xml"))
	if err != nil {
		b.Fatal(err)
	}
	d, _, err := document.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	d.Number = "INV-BENCH"
	line := d.Lines[0]
	d.Lines = nil
	for i := range 20 {
		l := line
		l.ID = fmt.Sprint(i + 1)
		l.NetAmount = l.NetAmount.Sub(l.NetAmount) // recomputed
		d.Lines = append(d.Lines, l)
	}
	d.AllowanceCharges = nil
	d.Totals = document.Totals{}
	d.ComputeTotals(document.RoundHalfUp)
	return d
}
