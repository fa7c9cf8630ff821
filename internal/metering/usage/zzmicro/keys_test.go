package micro

import (
	"context"
	"database/sql"
	"hash/maphash"
	"strconv"
	"strings"
	"testing"
	"time"
)

func runKeys(b *testing.B, mode string) {
	d := open(b, `CREATE TABLE k (time INTEGER NOT NULL, h INTEGER NOT NULL, PRIMARY KEY (time, h)) WITHOUT ROWID; CREATE TABLE blk (seq INTEGER PRIMARY KEY, tenant_id TEXT, data BLOB)`)
	ctx := context.Background()
	const chunk = 1000
	q := stmt("INSERT INTO k (time,h) VALUES ", "(?,?)", chunk)
	if mode == "json" {
		q = "INSERT INTO k (time,h) SELECT value->>0, value->>1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"
	}
	base := time.Now().UnixMicro()
	args := make([]any, 0, chunk*2)
	blob := make([]byte, 100*chunk)
	b.ResetTimer()
	start := time.Now()
	n := 0
	var sb strings.Builder
	for r := 0; r < b.N; r++ {
		tx, _ := d.BeginTx(ctx, nil)
		for c := 0; c < 20; c++ {
			args = args[:0]
			sb.Reset()
			sb.WriteByte('[')
			for i := 0; i < chunk; i++ {
				n++
				tm := base + int64(n/1000)*1000 + int64(n%1000)
				h := int64(maphash.String(seed, "ten\x00src\x00"+strconv.Itoa(n)))
				if mode == "json" {
					if i > 0 { sb.WriteByte(',') }
					sb.WriteByte('[')
					sb.WriteString(strconv.FormatInt(tm, 10)); sb.WriteByte(','); sb.WriteString(strconv.FormatInt(h, 10)); sb.WriteByte(']')
				} else {
					args = append(args, tm, h)
				}
			}
			sb.WriteByte(']')
			var err error
			if mode == "json" { _, err = tx.ExecContext(ctx, q, sb.String()) } else { _, err = tx.ExecContext(ctx, q, args...) }
			if err != nil { b.Fatal(err) }
			if _, err := tx.ExecContext(ctx, `INSERT INTO blk (tenant_id, data) VALUES (?, ?)`, "ten_01JBX0ABCDEFGHJKMNPQRSTVWX", blob); err != nil { b.Fatal(err) }
		}
		if err := tx.Commit(); err != nil { b.Fatal(err) }
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
	_ = sql.ErrNoRows
}
func BenchmarkKeysValues(b *testing.B) { runKeys(b, "values") }
func BenchmarkKeysJSON(b *testing.B)   { runKeys(b, "json") }
