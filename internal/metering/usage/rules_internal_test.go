package usage

import (
	"context"
	"log/slog"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Stored schemas are compiled at start, off the request path, and a
// reload after any rule change (which drops every tenant) compiles none
// of the unchanged ones again.
func TestRulesCompileStoredSchemasOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, tenant := range []string{"ten_a", "ten_b"} {
			if _, err := d.ExecContext(ctx, `INSERT INTO event_type_schemas (tenant_id, event_type, schema, created_at, updated_at)
				VALUES ($1, 'llm', '{"type":"object"}', 0, 0)`, tenant); err != nil {
				t.Fatal(err)
			}
		}
		r := NewRules(d, slog.New(slog.DiscardHandler))
		r.warm(ctx)
		for _, tenant := range []string{"ten_a", "ten_b"} {
			if _, ok := r.m.Load(tenant); !ok {
				t.Errorf("%s not loaded at start", tenant)
			}
		}
		if n := r.nCompiled.Load(); n != 1 {
			t.Errorf("one distinct document compiled %d times", n)
		}
		r.Invalidate()
		if tr, err := r.For(ctx, "ten_a"); err != nil || tr.Schemas["llm"] == nil {
			t.Fatalf("reloaded: %+v, %v", tr, err)
		}
		if n := r.nCompiled.Load(); n != 1 {
			t.Errorf("a reload compiled the unchanged schema again (%d compiles)", n)
		}
	})
}
