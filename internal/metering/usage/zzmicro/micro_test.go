package micro

import (
	"context"
	"database/sql"
	"fmt"
	"hash/maphash"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

var seed = maphash.MakeSeed()

func open(b *testing.B, schema string) *sql.DB {
	dsn := "file:" + filepath.Join(b.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	d, err := sql.Open("sqlite", dsn)
	if err != nil { b.Fatal(err) }
	d.SetMaxOpenConns(1)
	if _, err := d.Exec(schema); err != nil { b.Fatal(err) }
	return d
}

func stmt(head, row string, n int) string {
	var s strings.Builder
	s.WriteString(head)
	for i := 0; i < n; i++ { if i > 0 { s.WriteByte(',') }; s.WriteString(row) }
	s.WriteString(" ON CONFLICT DO NOTHING")
	return s.String()
}

const wide = `CREATE TABLE e (tenant_id TEXT NOT NULL, time BIGINT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL, data TEXT, datacontenttype TEXT, dataschema TEXT, received_at BIGINT NOT NULL, PRIMARY KEY (tenant_id, time, source, id)) WITHOUT ROWID`
const narrow = `CREATE TABLE e (tn INTEGER NOT NULL, time INTEGER NOT NULL, h INTEGER NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL, data TEXT, received_at INTEGER NOT NULL, PRIMARY KEY (tn, time, h, source, id)) WITHOUT ROWID`

func run(b *testing.B, schema string, narrowRows bool, prepared bool) {
	d := open(b, schema)
	ctx := context.Background()
	const chunk = 1000
	var q string
	if narrowRows {
		q = stmt("INSERT INTO e (tn,time,h,source,id,type,subject,data,received_at) VALUES ", "(?,?,?,?,?,?,?,?,?)", chunk)
	} else {
		q = stmt("INSERT INTO e (tenant_id,time,source,id,type,subject,data,datacontenttype,dataschema,received_at) VALUES ", "(?,?,?,?,?,?,?,?,?,?)", chunk)
	}
	base := time.Now().UnixMicro()
	args := make([]any, 0, chunk*10)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for r := 0; r < b.N; r++ {
		tx, _ := d.BeginTx(ctx, nil)
		var st *sql.Stmt
		if prepared { st, _ = tx.PrepareContext(ctx, q) }
		for c := 0; c < 20; c++ {
			args = args[:0]
			for i := 0; i < chunk; i++ {
				n++
				id := fmt.Sprintf("%08x-1b2c-4d5e-8f90-%012x", n*7919, n)
				tm := base + int64(n/1000)*1000 + int64(n%1000)
				data := fmt.Sprintf(`{"tokens":%d,"model":"m%d"}`, n%500, n%3)
				if narrowRows {
					h := int64(maphash.String(seed, "src\x00"+id))
					args = append(args, 1, tm, h, "api-gateway", id, "api_request", fmt.Sprintf("cus_%d", n%100), data, tm)
				} else {
					args = append(args, "ten_01JBX0ABCDEFGHJKMNPQRSTVWX", tm, "api-gateway", id, "api_request", fmt.Sprintf("cus_%d", n%100), data, nil, nil, tm)
				}
			}
			var err error
			if prepared { _, err = st.ExecContext(ctx, args...) } else { _, err = tx.ExecContext(ctx, q, args...) }
			if err != nil { b.Fatal(err) }
		}
		if err := tx.Commit(); err != nil { b.Fatal(err) }
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
}

func BenchmarkWideExec(b *testing.B)     { run(b, wide, false, false) }
func BenchmarkWidePrepared(b *testing.B) { run(b, wide, false, true) }
func BenchmarkNarrowExec(b *testing.B)   { run(b, narrow, true, false) }
func BenchmarkNarrowPrepared(b *testing.B) { run(b, narrow, true, true) }
