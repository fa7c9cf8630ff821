package casework

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/score"
)

// ModelInfo is one version of a tenant's score model.
type ModelInfo struct {
	Version   int       `json:"version"`
	Kind      string    `json:"kind" enum:"heuristic,logistic"`
	Examples  int       `json:"examples" doc:"labelled customers it was trained on"`
	Positives int       `json:"positives" doc:"of them labelled fraud"`
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights" doc:"per feature, on the standardised scale (log-odds per standard deviation)"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

type cachedModel struct {
	loaded time.Time
	model  score.Model
}

const modelTTL = 10 * time.Second

// model is the tenant's newest trained model, or the heuristic.
func (s *Service) model(ctx context.Context, tenant string) (score.Model, error) {
	now := s.clock.Now()
	s.models.Lock()
	c := s.modelsBy[tenant]
	s.models.Unlock()
	if c != nil && now.Sub(c.loaded) < modelTTL && now.Sub(c.loaded) >= 0 {
		return c.model, nil
	}
	m := score.Heuristic()
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT model FROM risk_models WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1`, tenant).Scan(&body)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return m, err
	default:
		var trained score.Model // a fresh one: the heuristic's caps must not stay
		if err := json.Unmarshal([]byte(body), &trained); err != nil {
			return m, fmt.Errorf("reading score model of %s: %w", tenant, err)
		}
		m = trained
	}
	s.models.Lock()
	s.modelsBy[tenant] = &cachedModel{loaded: now, model: m}
	s.models.Unlock()
	return m, nil
}

// featureVector flattens what a decision is based on into the score's
// features: graph.*, counters.<name>, lists.<name> (0/1), lists.block
// (block lists hit) and event.amount (a model input only, never money).
func (s *Service) featureVector(ctx context.Context, tenant string, ev *risk.Event, f *risk.Features) map[string]float64 {
	names := []string{"graph.linked_accounts", "graph.linked_labelled_fraud", "graph.component_size", "lists.block", "event.amount"}
	for k := range f.Counters {
		names = append(names, "counters."+k)
	}
	for k := range f.Lists {
		names = append(names, "lists."+k)
	}
	out := make(map[string]float64, len(names))
	for _, n := range names {
		if v, ok := s.feature(ctx, tenant, ev, f, n); ok {
			out[n] = v
		}
	}
	return out
}

// feature is one feature of featureVector, ok=false when the decision has
// none of that name; scoring asks only for the model's few.
func (s *Service) feature(ctx context.Context, tenant string, ev *risk.Event, f *risk.Features, name string) (float64, bool) {
	switch name {
	case "graph.linked_accounts":
		return float64(f.Graph.LinkedAccounts), true
	case "graph.linked_labelled_fraud":
		return float64(f.Graph.LinkedLabelledFraud), true
	case "graph.component_size":
		return float64(f.Graph.ComponentSize), true
	case "lists.block": // before lists.<name>: a list named block does not count
		return s.blockListsHit(ctx, tenant, f), true
	case "event.amount":
		if ev == nil || ev.Amount == "" {
			return 0, false
		}
		a, err := strconv.ParseFloat(ev.Amount, 64)
		return a, err == nil
	}
	if k, ok := strings.CutPrefix(name, "counters."); ok {
		v, ok := f.Counters[k]
		return v, ok
	}
	if k, ok := strings.CutPrefix(name, "lists."); ok {
		hit, ok := f.Lists[k]
		if hit {
			return 1, true
		}
		return 0, ok
	}
	return 0, false
}

// blockListsHit counts the block lists among the lists f hit.
func (s *Service) blockListsHit(ctx context.Context, tenant string, f *risk.Features) float64 {
	block := 0.0
	tl, _ := s.tenantLists(ctx, tenant)
	if tl == nil {
		return 0
	}
	for k, hit := range f.Lists {
		if !hit {
			continue
		}
		for _, l := range tl.lists {
			if l.Name == k && l.Action == "block" {
				block++
			}
		}
	}
	return block
}

// scorePort is casework's risk.Scorer.
type scorePort struct{ s *Service }

func (p scorePort) Score(ctx context.Context, tenant string, ev *risk.Event, f *risk.Features) (float64, []risk.Reason, error) {
	m, err := p.s.model(ctx, tenant)
	if err != nil {
		return 0, nil, err
	}
	sc, rs := m.ScoreOf(func(name string) (float64, bool) { return p.s.feature(ctx, tenant, ev, f, name) })
	reasons := make([]risk.Reason, len(rs))
	for i, r := range rs {
		reasons[i] = risk.Reason{Rule: "score:" + r.Feature,
			Description: scoreReason(r.Feature, r.Value, m.Kind, r.Weight),
			Values:      map[string]any{r.Feature: r.Value, "weight": r.Weight}}
	}
	return float64(sc), reasons, nil
}

// scoreReason describes a feature that raised the score, as
// fmt.Sprintf("%s = %g raised the score (%s model, %+.2f log-odds)")
// would, in one allocation (it is written for every decision).
func scoreReason(feature string, value float64, kind string, weight float64) string {
	b := make([]byte, 0, 64+len(feature)+len(kind))
	b = append(append(b, feature...), " = "...)
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(append(append(b, " raised the score ("...), kind...), " model, "...)
	at := len(b)
	b = strconv.AppendFloat(b, weight, 'f', 2, 64)
	if b[at] != '-' && b[at] != '+' {
		b = append(b[:at+1], b[at:]...)
		b[at] = '+'
	}
	return string(append(b, " log-odds)"...))
}

// TrainModel trains a new version of the tenant's score model on its
// labelled customers, each with the features of its latest decided event.
// Too few labels (20, with 5 of each) is a conflict, and the current model
// (or the heuristic) stays.
func (s *Service) TrainModel(ctx context.Context) (ModelInfo, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ModelInfo{}, err
	}
	if err := s.flushed(ctx); err != nil {
		return ModelInfo{}, err
	}
	return s.train(ctx, tenant)
}

func (s *Service) train(ctx context.Context, tenant string) (ModelInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer_id, label FROM risk_labels WHERE tenant_id = $1 ORDER BY customer_id`, tenant)
	if err != nil {
		return ModelInfo{}, err
	}
	type lab struct{ customer, label string }
	var labs []lab
	for rows.Next() {
		var l lab
		if err := rows.Scan(&l.customer, &l.label); err != nil {
			rows.Close()
			return ModelInfo{}, err
		}
		labs = append(labs, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ModelInfo{}, err
	}
	var examples []score.Example
	for _, l := range labs {
		// The features the event was decided with are kept in its row.
		var features, data string
		err := s.db.QueryRowContext(ctx, `SELECT features, data FROM risk_events
			WHERE tenant_id = $1 AND customer_id = $2 ORDER BY time DESC LIMIT 1`, tenant, l.customer).Scan(&features, &data)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return ModelInfo{}, err
		}
		var d struct{ Features risk.Features }
		var ev risk.Event
		if json.Unmarshal([]byte(features), &d.Features) != nil || json.Unmarshal([]byte(data), &ev) != nil {
			continue
		}
		examples = append(examples, score.Example{Features: s.featureVector(ctx, tenant, &ev, &d.Features), Fraud: l.label == "fraud"})
	}
	m, err := score.Train(examples, score.Options{})
	if errors.Is(err, score.ErrTooFewLabels) {
		return ModelInfo{}, abacus.Conflict("too_few_labels", "%s; the heuristic score stays in use", err.Error())
	}
	if err != nil {
		return ModelInfo{}, err
	}
	m.TrainedAt = s.clock.Now()
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM risk_models WHERE tenant_id = $1`, tenant).Scan(&m.Version); err != nil {
			return err
		}
		body, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO risk_models (tenant_id, version, kind, model, examples, positives, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			tenant, m.Version, m.Kind, string(body), m.Examples, m.Positives, db.TimeOf(m.TrainedAt))
		return err
	})
	if err != nil {
		return ModelInfo{}, err
	}
	s.models.Lock()
	delete(s.modelsBy, tenant)
	s.models.Unlock()
	return info(m), nil
}

func info(m score.Model) ModelInfo {
	return ModelInfo{Version: m.Version, Kind: m.Kind, Examples: m.Examples, Positives: m.Positives,
		Features: m.Features, Weights: m.Weights, CreatedAt: m.TrainedAt}
}

// CurrentModel answers the model scoring now (version 0: the heuristic).
func (s *Service) CurrentModel(ctx context.Context) (ModelInfo, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return ModelInfo{}, err
	}
	m, err := s.model(ctx, tenant)
	return info(m), err
}

// trainAll retrains every tenant with labels (the schedule); too few
// labels is not an error.
func (s *Service) trainAll(ctx context.Context) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM risk_labels`)
	if err != nil {
		s.log.Warn("risk score training", "err", err)
		return
	}
	var tenants []string
	for rows.Next() {
		var t string
		if rows.Scan(&t) == nil {
			tenants = append(tenants, t)
		}
	}
	rows.Close()
	for _, t := range tenants {
		if _, err := s.train(ctx, t); err != nil && abacus.ErrorKind(err) != abacus.KindConflict {
			s.log.Warn("risk score training", "tenant", t, "err", err)
		}
	}
}
