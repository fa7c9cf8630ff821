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

// seriesInput is the query of every series route.
type seriesInput struct {
	From     string `query:"from" doc:"first day, YYYY-MM-DD (UTC); default 12 months (interval=month) or 30 days (interval=day) before to"`
	To       string `query:"to" doc:"last day, YYYY-MM-DD (UTC); default today"`
	Interval string `query:"interval" doc:"day or month (default month)"`
	Currency string `query:"currency" doc:"ISO 4217 code; default every currency with figures"`
	Accept   string `header:"Accept" doc:"text/csv for CSV"`
}

func (in seriesInput) query() Query {
	return Query{From: in.From, To: in.To, Interval: in.Interval, Currency: in.Currency}
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

// csvOf writes items (structs of string and int fields) as CSV: a header
// row of their JSON names, then one row per item.
func csvOf[T any](items []T) ([]byte, error) {
	t := reflect.TypeFor[T]()
	var head []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		head = append(head, name)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(head); err != nil {
		return nil, err
	}
	for _, it := range items {
		v := reflect.ValueOf(it)
		row := make([]string, 0, len(head))
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				row = append(row, f.String())
			case reflect.Int, reflect.Int64:
				row = append(row, strconv.FormatInt(f.Int(), 10))
			case reflect.Slice:
				str, ok := f.Interface().(fmt.Stringer)
				if !ok {
					return nil, fmt.Errorf("analytics: no CSV for field %s of %s", t.Field(i).Name, t.Name())
				}
				row = append(row, str.String())
			default:
				return nil, fmt.Errorf("analytics: no CSV for field %s of %s", t.Field(i).Name, t.Name())
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
	httpapi.Register(s, op("get-analytics-mrr", "/api/v1/analytics/mrr", "MRR and its movements",
		"MRR per day or month and currency, oldest first, with the movements (new, expansion, contraction, churn, reactivation) "+
			"that led to it, ARR, paying customers and ARPA. The last point is to (today by default) and reflects today's changes.",
		reflect.TypeFor[abacus.List[MRRPoint]]()), abacus.ScopeRead,
		func(ctx context.Context, in *seriesInput) (*output, error) {
			pts, err := svc.MRR(ctx, in.query())
			if err != nil {
				return nil, err
			}
			return answer(pts, in.Accept)
		})
	series := func(id, path, summary, desc string, list reflect.Type, f func(context.Context, Query) (any, error)) {
		httpapi.Register(s, op(id, path, summary, desc, list), abacus.ScopeRead, func(ctx context.Context, in *seriesInput) (*output, error) {
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
	series("get-analytics-revenue", "/api/v1/analytics/revenue", "Revenue invoiced, collected and outstanding",
		"Per day or month and currency: invoice totals finalized, payments collected, refunds, and the amount due on open invoices at the end of the point.",
		reflect.TypeFor[abacus.List[RevenuePoint]](), func(ctx context.Context, q Query) (any, error) { return svc.Revenue(ctx, q) })
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
