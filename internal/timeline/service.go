package timeline

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// ConsumerName is the durable consumer on outbox.Stream that keeps the
// index; nodes running the timeline role share it.
const ConsumerName = "timeline"

// consumeBatch events are indexed in one transaction.
const consumeBatch = 200

// Service keeps and reads customers' timelines.
type Service struct {
	db  *db.DB
	bus *natsbus.Bus // the events stream (Run, Rebuild)
	log *slog.Logger
}

// NewService returns the timeline service over d, fed from bus.
func NewService(d *db.DB, bus *natsbus.Bus, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, bus: bus, log: log}
}

// families are the subjects the consumer reads: every family with an
// indexed type (the stream filters the rest out before they are sent).
func families() []string {
	var out []string
	for _, t := range Types() {
		f, _, _ := strings.Cut(t, ".")
		if !slices.Contains(out, f+".>") {
			out = append(out, f+".>")
		}
	}
	return out
}

// Run keeps the index until ctx ends: batches of domain events are
// indexed in one transaction each and acknowledged after it commits, so
// a crash in between redelivers them and Index skips what it stored. A
// new consumer starts at the beginning of the stream, so a first
// deployment indexes the history the stream still holds.
func (s *Service) Run(ctx context.Context) error {
	return outbox.ConsumeBatches(ctx, s.bus, outbox.Subscription{
		Durable: ConsumerName, Types: families(), Batch: consumeBatch, AckWait: time.Minute, Log: s.log,
	}, func(ctx context.Context, events []outbox.Event) error {
		_, err := s.Index(ctx, events)
		return err
	})
}

// Index adds the events that name a customer to their customers'
// timelines, in one transaction, and returns how many it read as such
// (already indexed ones included). An event whose payload cannot be
// decoded into its type is logged and left out: a retry could not read
// it either, and it must not hold up the events behind it.
func (s *Service) Index(ctx context.Context, events []outbox.Event) (int, error) {
	return s.index(ctx, events, false)
}

// index is Index; with refresh, an entry already indexed is written again
// from the event (a rebuild after the way entries are read changed).
func (s *Service) index(ctx context.Context, events []outbox.Event, refresh bool) (int, error) {
	rows := make([]row, 0, len(events))
	for _, e := range events {
		ix, ok, err := indexedOf(e)
		if err != nil {
			s.log.Error("timeline: skipping an event whose payload does not decode", "event_id", e.ID, "type", e.Type,
				"tenant_id", e.TenantID, "err", err)
			continue
		}
		if !ok {
			continue
		}
		rows = append(rows, row{tenant: e.TenantID, eventID: e.ID, customer: ix.customer, organization: ix.organization, typ: e.Type,
			at: db.TimeOf(e.CreatedAt.UTC()), object: ix.object, data: ix.data})
	}
	if len(rows) == 0 {
		return 0, nil
	}
	n := 0
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		rows, err := orgCustomers(ctx, tx, rows)
		if err != nil {
			return err
		}
		n = len(rows)
		return insertRows(ctx, tx, rows, refresh)
	})
	return n, err
}

// orgCustomers fills in the customer of rows that name an organization:
// the catalog customer an organization is billed as carries the
// organization's id as its external id (enduser/org). A row whose
// organization has no customer any more (the tenant changed its external
// id) is left out.
func orgCustomers(ctx context.Context, tx *db.Tx, rows []row) ([]row, error) {
	type key struct{ tenant, org string }
	found := map[key]string{}
	out := rows[:0]
	for _, r := range rows {
		if r.customer == "" {
			k := key{r.tenant, r.organization}
			cus, ok := found[k]
			if !ok {
				c, err := catalog.LoadCustomer(ctx, tx, r.tenant, r.organization)
				if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
					return nil, err
				}
				cus, found[k] = c.ID, c.ID
			}
			if cus == "" {
				continue
			}
			r.customer = cus
		}
		out = append(out, r)
	}
	return out, nil
}

// Filter narrows a timeline page.
type Filter struct {
	// Types are event types ("invoice.paid") or families ("invoice.*");
	// none means every type.
	Types []string
	Since time.Time // inclusive
	Until time.Time // exclusive
	// Cursor is the next_cursor of the previous page.
	Cursor string
	Limit  int // default 20, at most 100
}

// List returns a page of the timeline of the customer ref names (its id
// or external id), newest first. Errors: "customer_not_found" (also for
// another tenant's customer), "invalid_type" (query.type),
// "invalid_time_range" (query.until), "invalid_cursor" (query.cursor).
func (s *Service) List(ctx context.Context, ref string, f Filter) (abacus.List[TimelineEntry], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[TimelineEntry]{}, err
	}
	types, err := expandTypes(f.Types)
	if err != nil {
		return abacus.List[TimelineEntry]{}, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return abacus.List[TimelineEntry]{}, abacus.Invalid("invalid_time_range", "until (%s) must be after since (%s)",
			f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339)).WithField("query.until", "must be after since")
	}
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	cus, err := catalog.LoadCustomer(ctx, s.db, tenant, ref)
	if err != nil {
		return abacus.List[TimelineEntry]{}, err
	}
	p := query{tenant: tenant, customer: cus.ID, types: types, cursor: f.Cursor, limit: f.Limit}
	if !f.Since.IsZero() {
		p.since = db.NullTime{Time: f.Since, Valid: true}
	}
	if !f.Until.IsZero() {
		p.until = db.NullTime{Time: f.Until, Valid: true}
	}
	rows, err := listRows(ctx, s.db, p)
	if err != nil {
		return abacus.List[TimelineEntry]{}, err
	}
	next := ""
	if len(rows) > f.Limit {
		rows = rows[:f.Limit]
		next = rows[len(rows)-1].eventID
	}
	var plans map[string]string
	if slices.ContainsFunc(rows, func(r row) bool { return r.data["plan_id"] != "" }) {
		if plans, err = catalog.PlanNames(ctx, s.db, tenant); err != nil {
			return abacus.List[TimelineEntry]{}, err
		}
	}
	out := make([]TimelineEntry, len(rows))
	for i, r := range rows {
		out[i] = TimelineEntry{EventID: r.eventID, Type: r.typ, OccurredAt: r.at.UTC(), Summary: summary(r.typ, r.data, plans),
			Object: r.object, Data: r.data}
		if name := plans[r.data["plan_id"]]; name != "" {
			out[i].Data["plan_name"] = name
		}
	}
	return abacus.ListOf(out, next), nil
}

// expandTypes turns the type filter into exact types, a family
// ("invoice.*") into each of its types. Errors: "invalid_type".
func expandTypes(in []string) ([]string, error) {
	known := Types()
	var out []string
	for _, t := range in {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		var match []string
		if f, ok := strings.CutSuffix(t, ".*"); ok {
			for _, k := range known {
				if strings.HasPrefix(k, f+".") {
					match = append(match, k)
				}
			}
		} else if slices.Contains(known, t) {
			match = []string{t}
		}
		if len(match) == 0 {
			return nil, abacus.Invalid("invalid_type", "%q is not an event type the timeline holds; use a type such as invoice.finalized or a family such as invoice.*", t).
				WithField("query.type", "unknown event type")
		}
		for _, m := range match {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}
