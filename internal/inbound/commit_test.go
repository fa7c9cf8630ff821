package inbound

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Concurrent uploads share transactions (group commit) and still come out
// right: each distinct document once with one event, the same bytes sent
// twice at once stored once, and of two copies of one invoice (other
// bytes, same supplier, number and date) exactly one flagged, even when
// both are in the same transaction.
func TestConcurrentReceivesCommitTogether(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := newService(t, d, newDir(t))
		ctx := tenantCtx("ten_a")
		orig := example(t, "examples/invoice-saas-de.xml")
		numbered := func(n int, copy bool) []byte {
			b := bytes.Replace(orig, []byte("<cbc:ID>WW-2027-00042</cbc:ID>"), fmt.Appendf(nil, "<cbc:ID>GC-%d</cbc:ID>", n), 1)
			if copy {
				b = append(b, "<!-- sent again -->\n"...)
			}
			return b
		}
		var uploads [][]byte
		for n := range 20 {
			uploads = append(uploads, numbered(n, false))
		}
		for n := range 5 { // a copy right behind its original; the same bytes twice
			uploads = append(uploads, numbered(200+n, false), numbered(200+n, true), numbered(100+n, false), numbered(100+n, false))
		}
		var wg sync.WaitGroup
		created := make([]bool, len(uploads))
		docs := make([]Document, len(uploads))
		for i, u := range uploads {
			wg.Go(func() {
				var err error
				if docs[i], created[i], err = s.Receive(ctx, u, SourceAPI); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var stored, flagged int
		for i := range uploads {
			if created[i] {
				stored++
				if docs[i].DuplicateOf != "" {
					flagged++
				}
			}
		}
		if stored != 35 || flagged != 5 || events(t, d, "ten_a") != 35 {
			t.Fatalf("%d stored (want 35), %d flagged (want 5), %d events (want 35)", stored, flagged, events(t, d, "ten_a"))
		}
		var rows, dups int
		if err := d.QueryRowContext(ctx, `SELECT count(*), count(NULLIF(duplicate_of, '')) FROM inbound_documents WHERE tenant_id = $1`,
			"ten_a").Scan(&rows, &dups); err != nil || rows != 35 || dups != 5 {
			t.Fatalf("rows %d, duplicates %d: %v", rows, dups, err)
		}
	})
}
