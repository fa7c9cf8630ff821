package risk

import (
	"encoding/json"
	"reflect"
	"time"
)

func reflectType[T any]() reflect.Type { return reflect.TypeFor[T]() }

const exampleSchema = `{"type": "object", "required": ["properties"], "properties": {"properties": {"type": "object", "required": ["plan"], "properties": {"plan": {"enum": ["free", "pro"]}}}}}`

var exampleAt = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

func exampleEventInput() EventInput {
	at := exampleAt
	return EventInput{Type: TypeOrder, Time: &at, CustomerID: "crm-4711", DeviceID: "dev-8f2c", IP: "203.0.113.7",
		Email: "ana@example.com", CardFingerprint: "fp_2b9e", CardBIN: "424242", CardLast4: "4242",
		ShippingAddress: &ShippingAddress{Line1: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "DE"},
		Amount:          "249.00", Currency: "EUR", Properties: map[string]any{"items": 3}}
}

func exampleDecision() *Decision {
	return &Decision{ID: "rdec_01jbx7m0d4f6h8j0k2m4n6p8qr", EventID: "rev_01jbx7m0c1e3g5i7k9m1o3q5st", Decision: Block, Score: 12,
		Reasons: []Reason{{Rule: "rul_01jbx7k2q9m4r8t6v3w5y0z1ab", Version: 2, Name: "card testing", Action: Block,
			Description: "more than 5 cards on one device in 10 minutes", Values: map[string]any{"counters.cards_per_device_10m": 6.0}}},
		Features: Features{Counters: map[string]float64{"cards_per_device_10m": 6}, Graph: GraphValues{LinkedAccounts: 1, ComponentSize: 4},
			Lists: map[string]bool{}},
		ScoreReasons: []Reason{}, Shadow: []Reason{}, RuleErrors: []RuleError{},
		Rules:     []RuleRef{{Rule: "rul_01jbx7k2q9m4r8t6v3w5y0z1ab", Version: 2, Mode: ModeEnforce, Matched: true}},
		CreatedAt: exampleAt}
}

// Examples are the values the API reference shows for the risk module's
// bodies (httpapi.Server.Example).
func Examples() []any {
	logic := json.RawMessage(`{">": [{"var": "counters.cards_per_device_10m"}, 5]}`)
	r := &Rule{ID: "rul_01jbx7k2q9m4r8t6v3w5y0z1ab", Version: 1, Name: "card testing", Description: "more than 5 cards on one device in 10 minutes",
		Action: Block, Mode: ModeEnforce, Logic: logic, Status: StatusDraft, CreatedAt: exampleAt}
	d := exampleDecision()
	return []any{
		RuleInput{Name: r.Name, Description: r.Description, Action: Block, Mode: ModeEnforce, Logic: logic},
		r,
		&RuleWithVersions{Rule: *r, Versions: []*Rule{r}},
		CounterInput{Name: "cards_per_device_10m", Key: "device_id", Op: OpDistinct, Of: "card_fingerprint", Window: "10m", EventTypes: []string{TypePayment}},
		Counter{ID: "rctr_01jbx7k2q9m4r8t6v3w5y0z1ab", Name: "cards_per_device_10m", Key: "device_id", Op: OpDistinct, Of: "card_fingerprint",
			Window: "10m", EventTypes: []string{TypePayment}, CreatedAt: exampleAt},
		d,
		Answer{One: d},
		RiskSettings{DefaultDecision: Allow, UpdatedAt: &exampleAt},
		RiskSettingsInput{DefaultDecision: Review},
		BacktestInput{Days: 7, Rules: []BacktestRef{{Rule: r.ID, Version: 2}}},
		&Backtest{From: exampleAt.Add(-7 * 24 * time.Hour), To: exampleAt, Events: 120_000, Changed: 37,
			Transitions: map[string]int{"allow→block": 37}, Decisions: map[string]int{"allow": 119_950, "block": 50},
			Examples: []BacktestExample{{EventID: d.EventID, DecisionID: d.ID, Time: exampleAt, From: Allow, To: Block, Reasons: d.Reasons}},
			Rules:    []RuleRef{{Rule: r.ID, Version: 2, Mode: ModeEnforce}}, TookMS: 850},
	}
}
