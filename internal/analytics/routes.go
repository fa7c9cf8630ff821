package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// SeriesParams is the query of every series route. It is exported because
// convertingInput embeds it: huma reads the parameters of an embedded struct
// only when its type is exported, and silently drops them otherwise.
type SeriesParams struct {
	From     string `query:"from" doc:"first day, YYYY-MM-DD (UTC); default 12 months (interval=month) or 30 days (interval=day) before to"`
	To       string `query:"to" doc:"last day, YYYY-MM-DD (UTC); default today"`
	Interval string `query:"interval" doc:"day or month (default month)"`
	Currency string `query:"currency" doc:"ISO 4217 code; default every currency with figures"`
	Accept   string `header:"Accept" doc:"text/csv for CSV"`
}

func (in SeriesParams) query() Query {
	return Query{From: in.From, To: in.To, Interval: in.Interval, Currency: in.Currency}
}

// convertingInput is the query of the series that can add a converted
// total (MRR, revenue).
type convertingInput struct {
	SeriesParams
	ConvertTo string `query:"convert_to" doc:"ISO 4217 code: adds, per point, a converted total of every currency's figures at the tenant's FX rates (PUT /api/v1/analytics/fx-rates), marked converted"`
}

func (in convertingInput) query() Query {
	q := in.SeriesParams.query()
	q.ConvertTo = in.ConvertTo
	return q
}

// output is a JSON or CSV answer.
type output struct {
	ContentType string `header:"Content-Type"`
	Body        any
}

// answer encodes items as the list shape, or as CSV when accept asks.
func answer[T any](items []T, accept string) (*output, error) {
	if strings.Contains(accept, "text/csv") {
		b, err := csvOf(items)
		if err != nil {
			return nil, err
		}
		return &output{ContentType: "text/csv; charset=utf-8", Body: b}, nil
	}
	return &output{ContentType: "application/json", Body: abacus.ListOf(items, "")}, nil
}

// answerAny is answer for the series routes' point slices.
func answerAny(items any, accept string) (*output, error) {
	switch v := items.(type) {
	case []MRRPoint:
		return answer(v, accept)
	case []CustomersPoint:
		return answer(v, accept)
	case []ChurnPoint:
		return answer(v, accept)
	case []RetentionPoint:
		return answer(v, accept)
	case []RevenuePoint:
		return answer(v, accept)
	}
	return nil, fmt.Errorf("analytics: no answer for %T", items)
}

// csvOf writes items (structs of string, int and bool fields, and
// embedded structs of them) as CSV: a header row of their JSON names,
// then one row per item.
func csvOf[T any](items []T) ([]byte, error) {
	t := reflect.TypeFor[T]()
	var head []string
	var fields [][]int // index paths, embedded structs flattened as JSON does
	var walk func(t reflect.Type, path []int)
	walk = func(t reflect.Type, path []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			p := append(append([]int{}, path...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type, p)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			head, fields = append(head, name), append(fields, p)
		}
	}
	walk(t, nil)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(head); err != nil {
		return nil, err
	}
	for _, it := range items {
		v := reflect.ValueOf(it)
		row := make([]string, 0, len(head))
		for i, p := range fields {
			switch f := v.FieldByIndex(p); f.Kind() {
			case reflect.String:
				row = append(row, f.String())
			case reflect.Int, reflect.Int64:
				row = append(row, strconv.FormatInt(f.Int(), 10))
			case reflect.Bool:
				row = append(row, strconv.FormatBool(f.Bool()))
			case reflect.Slice:
				str, ok := f.Interface().(fmt.Stringer)
				if !ok {
					return nil, fmt.Errorf("analytics: no CSV for field %s of %s", head[i], t.Name())
				}
				row = append(row, str.String())
			default:
				return nil, fmt.Errorf("analytics: no CSV for field %s of %s", head[i], t.Name())
			}
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// RegisterRoutes adds the analytics routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	registerExamples(s)
	tags := []string{"Analytics"}
	reg := s.API.OpenAPI().Components.Schemas
	op := func(id, path, summary, desc string, list reflect.Type) huma.Operation {
		o := huma.Operation{OperationID: id, Method: http.MethodGet, Path: path, Summary: summary, Tags: tags,
			Description: desc + " Accept: text/csv answers CSV (a header row of the field names, one row per point). Definitions: docs/analytics.md."}
		o.Responses = map[string]*huma.Response{"200": {Description: "OK", Content: map[string]*huma.MediaType{
			"application/json": {Schema: reg.Schema(list, true, "")},
			"text/csv":         {Schema: &huma.Schema{Type: "string"}},
		}}}
		return o
	}
	// converting registers a series that can add converted totals.
	converting := func(id, path, summary, desc string, list reflect.Type, f func(context.Context, Query) (any, error)) {
		httpapi.Register(s, op(id, path, summary, desc, list), abacus.ScopeRead, func(ctx context.Context, in *convertingInput) (*output, error) {
			pts, err := f(ctx, in.query())
			if err != nil {
				return nil, err
			}
			return answerAny(pts, in.Accept)
		})
	}
	converting("get-analytics-mrr", "/api/v1/analytics/mrr", "MRR and its movements",
		"MRR per day or month and currency, oldest first, with the movements (new, expansion, contraction, churn, reactivation) "+
			"that led to it, ARR, paying customers, ARPA and usage revenue beside it. The last point is to (today by default) and reflects today's changes.",
		reflect.TypeFor[abacus.List[MRRPoint]](), func(ctx context.Context, q Query) (any, error) { return svc.MRR(ctx, q) })
	series := func(id, path, summary, desc string, list reflect.Type, f func(context.Context, Query) (any, error)) {
		httpapi.Register(s, op(id, path, summary, desc, list), abacus.ScopeRead, func(ctx context.Context, in *SeriesParams) (*output, error) {
			pts, err := f(ctx, in.query())
			if err != nil {
				return nil, err
			}
			return answerAny(pts, in.Accept)
		})
	}
	series("get-analytics-customers", "/api/v1/analytics/customers", "Customers, logo churn, ARPA and trials",
		"Paying customers (MRR > 0) per day or month and currency, with new, reactivated and churned customers, logo churn rate, ARPA, and trials started, converted and lapsed.",
		reflect.TypeFor[abacus.List[CustomersPoint]](), func(ctx context.Context, q Query) (any, error) { return svc.Customers(ctx, q) })
	series("get-analytics-churn", "/api/v1/analytics/churn", "Logo and revenue churn",
		"Per day or month and currency: customers and MRR at the start, churned customers, logo churn rate, the MRR movements, gross and net revenue churn rates.",
		reflect.TypeFor[abacus.List[ChurnPoint]](), func(ctx context.Context, q Query) (any, error) { return svc.Churn(ctx, q) })
	series("get-analytics-retention", "/api/v1/analytics/retention", "Net and gross revenue retention (12 months)",
		"Per month (interval=month only) and currency: the customers paying twelve months before the point, their MRR then and at the point, net and gross revenue retention.",
		reflect.TypeFor[abacus.List[RetentionPoint]](), func(ctx context.Context, q Query) (any, error) { return svc.Retention(ctx, q) })
	converting("get-analytics-revenue", "/api/v1/analytics/revenue", "Revenue invoiced, collected and outstanding",
		"Per day or month and currency: invoice totals finalized (and their usage part), payments collected, refunds, and the amount due on open invoices at the end of the point.",
		reflect.TypeFor[abacus.List[RevenuePoint]](), func(ctx context.Context, q Query) (any, error) { return svc.Revenue(ctx, q) })
	httpapi.Register(s, huma.Operation{OperationID: "get-analytics-fx-rates", Method: http.MethodGet, Path: "/api/v1/analytics/fx-rates", Tags: tags,
		Summary:     "Get the FX rates for converted totals",
		Description: "The exchange rates and the rounding the MRR and revenue series use when asked for a converted total (convert_to). Empty until set."},
		abacus.ScopeRead, func(ctx context.Context, _ *struct{}) (*httpapi.Body[FXRates], error) {
			return httpapi.Reply(svc.FXRates(ctx))
		})
	httpapi.Register(s, huma.Operation{OperationID: "put-analytics-fx-rates", Method: http.MethodPut, Path: "/api/v1/analytics/fx-rates", Tags: tags,
		Summary: "Replace the FX rates for converted totals",
		Description: "Replaces every exchange rate of the tenant (1 from = rate to) and the rounding of converted totals. Figures are always kept and " +
			"answered in their own currency; the rates are used only for the converted total a series is asked for with convert_to."},
		abacus.ScopeAdmin, func(ctx context.Context, in *struct{ Body FXRatesInput }) (*httpapi.Body[FXRates], error) {
			return httpapi.Reply(svc.PutFXRates(ctx, in.Body))
		})
	httpapi.Register(s, op("get-analytics-aging", "/api/v1/analytics/aging", "Accounts-receivable aging",
		"What open invoices owe per currency by days past due (the payments module's report): current, 1–30, 31–60, 61–90, over 90.",
		reflect.TypeFor[abacus.List[AgingPoint]]()), abacus.ScopeRead, func(ctx context.Context, in *struct {
		Currency string `query:"currency" doc:"ISO 4217 code; default every currency"`
		Accept   string `header:"Accept" doc:"text/csv for CSV"`
	}) (*output, error) {
		pts, err := svc.Aging(ctx, in.Currency)
		if err != nil {
			return nil, err
		}
		return answer(pts, in.Accept)
	})
	httpapi.Register(s, op("get-analytics-usage", "/api/v1/analytics/usage", "Usage trends per meter",
		"Per meter and day, ISO week or calendar month (UTC), oldest first: the meter's value, its value in the interval before, the growth, "+
			"and the top customers (subjects with the highest values, each with the customer that owns it).",
		reflect.TypeFor[abacus.List[UsagePoint]]()), abacus.ScopeRead, func(ctx context.Context, in *struct {
		From     string `query:"from" doc:"first day, YYYY-MM-DD (UTC); default 30 days (day), 12 weeks (week) or 12 months (month) before to"`
		To       string `query:"to" doc:"last day, YYYY-MM-DD (UTC); default today"`
		Interval string `query:"interval" doc:"day, week (Monday to Sunday) or month (default month)"`
		Meter    string `query:"meter" doc:"a meter's id or slug; default every meter"`
		Top      int    `query:"top" doc:"top customers per point, 1–100 (default 5)"`
		Accept   string `header:"Accept" doc:"text/csv for CSV"`
	}) (*output, error) {
		q := Query{From: in.From, To: in.To, Interval: in.Interval}
		pts, err := svc.UsageTrends(ctx, UsageQuery{Query: q, Meter: in.Meter, Top: in.Top})
		if err != nil {
			return nil, err
		}
		return answer(pts, in.Accept)
	})
	customer := op("get-analytics-customer", "/api/v1/analytics/customers/{id}", "A customer's figures",
		"The customer's MRR, ARR and lifetime value so far per currency, its balance (due, overdue, credits) with the invoices it comes from, "+
			"its usage against each quota this period, and its connected devices (active end-user sessions and live real-time connections).",
		reflect.TypeFor[CustomerFigures]())
	customer.Description = strings.Replace(customer.Description, " Accept: text/csv answers CSV (a header row of the field names, one row per point).", "", 1)
	customer.Responses = nil
	httpapi.Register(s, customer, abacus.ScopeRead, func(ctx context.Context, in *struct {
		ID string `path:"id" doc:"customer id or external id"`
	}) (*httpapi.Body[CustomerFigures], error) {
		return httpapi.Reply(svc.Customer(ctx, in.ID))
	})
	rebuild := huma.Operation{OperationID: "rebuild-analytics", Method: http.MethodPost, Path: "/api/v1/analytics/rebuild", Tags: tags,
		Summary:     "Rebuild the analytics from the journal",
		Description: "Recomputes every figure of the tenant from the journal of domain events analytics consumed; the result equals what the incremental path produced."}
	httpapi.Register(s, rebuild, abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[RebuildReport], error) {
		return httpapi.Reply(svc.RebuildTenant(ctx))
	})
}
