package risk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// A stored event's decision lives in the event's row (its id is the
// event's with rdec_ for rev_), a question's in risk_decisions, and both
// name their rule set by reference: each is explained by GET, and the
// list pages through both in id order with the decision filter, beside a
// decision stored the old way (its own row, rule set inline).
func TestDecisionsStoredWithTheirEvents(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		svc, err := NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler), Config{HashKey: bytes.Repeat([]byte{5}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_s", Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if err := svc.Start(ctx, nil); err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		block, err := svc.CreateRule(ctx, RuleInput{Name: "big", Action: Block, Logic: json.RawMessage(`{">":[{"var":"event.amount"},100]}`)})
		if err != nil {
			t.Fatal(err)
		}
		shadow, err := svc.CreateRule(ctx, RuleInput{Name: "any order", Action: Review, Mode: ModeShadow, Logic: json.RawMessage(`{"==":[{"var":"event.type"},"order"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Rule{block, shadow} {
			if _, err := svc.ActivateRule(ctx, r.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
		// An old-style decision (before 0803): own row, rule set inline.
		old := decisionRecord{ID: abacus.NewID("rdec"), Decision: Review, Reasons: []Reason{}, RuleSet: []string{block.ID + "@1"}, CreatedAt: time.Now().UTC()}
		oldBody, _ := json.Marshal(old)
		if _, err := d.ExecContext(ctx, `INSERT INTO risk_decisions (tenant_id, id, event_id, decision, body, created_at) VALUES ($1, $2, '', $3, $4, $5)`,
			"ten_s", old.ID, old.Decision, string(oldBody), old.CreatedAt.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		var ids []string
		want := map[string]string{old.ID: Review}
		for i, amount := range []string{"50.00", "150.00", "20.00"} {
			body := fmt.Sprintf(`{"type":"order","customer_id":"c%d","amount":%q,"currency":"EUR"}`, i, amount)
			ds, _, err := svc.Decide(ctx, []byte(body), i != 2) // the last one a question
			if err != nil {
				t.Fatal(err)
			}
			dd := ds[0]
			if i != 2 && dd.ID != decisionIDOf(dd.EventID) {
				t.Errorf("decision %s of event %s: want the event's id", dd.ID, dd.EventID)
			}
			ids = append(ids, dd.ID)
			want[dd.ID] = dd.Decision
		}
		if want[ids[0]] != Allow || want[ids[1]] != Block || want[ids[2]] != Allow {
			t.Fatalf("decisions %v", want)
		}
		for _, id := range append(ids, old.ID) {
			got, err := svc.GetDecision(ctx, id)
			if err != nil {
				t.Fatalf("GET %s: %v", id, err)
			}
			if got.ID != id || got.Decision != want[id] {
				t.Errorf("GET %s: %s %s", id, got.ID, got.Decision)
			}
			if id == old.ID {
				if len(got.Rules) != 1 || got.Rules[0].Rule != block.ID {
					t.Errorf("old decision's rules: %+v", got.Rules)
				}
				continue
			}
			if len(got.Rules) != 2 || got.Event == nil || len(got.Shadow) != 1 || got.Shadow[0].Rule != shadow.ID {
				t.Errorf("GET %s: rules %+v, event %v, shadow %+v", id, got.Rules, got.Event != nil, got.Shadow)
			}
			for _, ref := range got.Rules {
				if ref.Rule == block.ID && ref.Matched != (want[id] == Block) || ref.Rule == shadow.ID && (!ref.Matched || ref.Mode != ModeShadow) {
					t.Errorf("GET %s: rule %+v", id, ref)
				}
			}
		}
		if _, err := svc.GetDecision(ctx, "rdec_01jbx7m0c1e3g5i7k9m1o3q5s1"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Errorf("an unknown decision: %v", err)
		}
		// Page through everything one at a time: every decision once, in id order.
		var seen []string
		cursor := ""
		for range 10 {
			page, err := svc.ListDecisions(ctx, DecisionFilter{}, cursor, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range page.Data {
				seen = append(seen, x.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(seen) != 4 {
			t.Fatalf("listed %v, want 4 decisions", seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Errorf("listed out of order: %v", seen)
			}
		}
		blocked, err := svc.ListDecisions(ctx, DecisionFilter{Decision: Block}, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(blocked.Data) != 1 || blocked.Data[0].ID != ids[1] || blocked.Data[0].Features.Counters == nil {
			t.Errorf("blocked: %+v", blocked.Data)
		}
		// A customer's decisions: of its events and of its questions.
		for _, c := range []struct {
			f    DecisionFilter
			want []string
		}{
			{DecisionFilter{Customer: "c1"}, []string{ids[1]}},
			{DecisionFilter{Customer: "c2"}, []string{ids[2]}},
			{DecisionFilter{Customer: "c1", Decision: Block}, []string{ids[1]}},
			{DecisionFilter{Customer: "c0", Decision: Block}, nil},
			{DecisionFilter{Customer: "nobody"}, nil},
		} {
			page, err := svc.ListDecisions(ctx, c.f, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range page.Data {
				got = append(got, x.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("decisions of %+v: %v, want %v", c.f, got, c.want)
			}
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM risk_decisions WHERE tenant_id = 'ten_s'`).Scan(&n); err != nil || n != 2 {
			t.Errorf("risk_decisions holds %d rows (%v), want 2: the question and the old one", n, err)
		}
	})
}
