package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/client"
)

// IngestConfig is a load run against a real Abacus server.
type IngestConfig struct {
	Config
	// CreateMeters creates a SUM meter over $.value and a COUNT meter for
	// a new event type of this run. When false, SumMeter and CountMeter
	// (if given) must already count EventType; their totals are read
	// before the run and the increase is verified.
	CreateMeters bool
	SumMeter     string
	CountMeter   string
	EventType    string // default: a new "bench_<ulid>" per run
	Source       string // default "abacus-bench"
	Subjects     int    // default 100
	// Spread moves event times back by up to this much (e.g. 720h to
	// fill a month of daily windows); 0 stamps events with the send time.
	Spread time.Duration
	// ProbeEvery sends a marker event with a new subject this often while
	// the load runs and measures ingest→queryable for it; 0 = no probe.
	ProbeEvery time.Duration
	// SettleTimeout bounds the wait for totals after the last ack; default 60 s.
	SettleTimeout time.Duration
	// Poll is how often totals and probes are queried; default 10 ms.
	Poll time.Duration
	// Send delivers the load; nil sends with the client (net/http).
	Send SendFunc
	// Started, when set, is called once the meters exist, before the
	// load starts (with EventType, SumMeter and CountMeter filled in).
	Started func(IngestResult)
}

// IngestResult is what a run sent and what the meters show afterwards.
type IngestResult struct {
	Send       Result
	EventType  string
	SumMeter   string
	CountMeter string
	Probes     int64 // probe events sent (counted in WantCount)
	WantSum    decimal.Decimal
	WantCount  decimal.Decimal
	GotSum     decimal.Decimal
	GotCount   decimal.Decimal
	// Queryable is the time from the last acknowledged request until
	// the meters showed every event; 0 when they never did.
	Queryable time.Duration
	Probe     Latency // per probe: its ack until it was queryable
}

// Exact reports whether both meters equal what was sent.
func (r IngestResult) Exact() bool {
	return r.GotSum.Equal(r.WantSum) && r.GotCount.Equal(r.WantCount)
}

// EndToEnd returns events per second from the first request until
// everything was queryable (0 when it never was).
func (r IngestResult) EndToEnd() float64 {
	if r.Queryable <= 0 || r.Send.Elapsed <= 0 {
		return 0
	}
	return float64(r.Send.Events) / (r.Send.Elapsed + r.Queryable).Seconds()
}

// Ingest runs cfg against the server c talks to: it creates the meters,
// sends the load (with probes), then polls the meters until their totals
// equal what was acknowledged or SettleTimeout passes. A mismatch is not
// an error here (see IngestResult.Exact); failures to talk to the server
// are.
func Ingest(ctx context.Context, c *client.Client, cfg IngestConfig) (IngestResult, error) {
	if !client.IsLoopback(c.BaseURL()) {
		return IngestResult{}, fmt.Errorf("url %s: the load generator only drives servers on 127.0.0.1 (or ::1, localhost)", c.BaseURL())
	}
	run := strings.TrimPrefix(abacus.NewID("b"), "b_")
	if cfg.EventType == "" {
		cfg.EventType = "bench_" + run
	}
	if cfg.Source == "" {
		cfg.Source = "abacus-bench"
	}
	if cfg.Subjects <= 0 {
		cfg.Subjects = 100
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 60 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	res := IngestResult{EventType: cfg.EventType, SumMeter: cfg.SumMeter, CountMeter: cfg.CountMeter}
	if cfg.CreateMeters {
		slug := strings.ReplaceAll(cfg.EventType, "-", "_")
		res.SumMeter, res.CountMeter = slug+"_sum", slug+"_count"
		for _, m := range []client.Meter{
			{Slug: res.SumMeter, EventType: cfg.EventType, Aggregation: "SUM", ValueProperty: "$.value", GroupBy: map[string]string{"model": "$.model"}},
			{Slug: res.CountMeter, EventType: cfg.EventType, Aggregation: "COUNT"},
		} {
			if _, err := c.CreateMeter(ctx, m); err != nil {
				return res, err
			}
		}
	}
	verify := res.SumMeter != "" && res.CountMeter != ""
	start := time.Now()
	q := Window(start, cfg.Spread)
	var baseSum, baseCount decimal.Decimal
	if verify && !cfg.CreateMeters {
		var err error
		if baseSum, baseCount, err = Totals(ctx, c, res.SumMeter, res.CountMeter, q); err != nil {
			return res, err
		}
	}

	if cfg.Started != nil {
		cfg.Started(res)
	}
	g := NewGen(run, cfg.EventType, cfg.Source, cfg.Subjects, cfg.Spread)
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probe prober
	var wg sync.WaitGroup
	if cfg.ProbeEvery > 0 && verify {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe.run(probeCtx, c, g, res.CountMeter, cfg.ProbeEvery, cfg.Poll)
		}()
	}
	sendFn := cfg.Send
	if sendFn == nil {
		sendFn = HTTPSender(c)
	}
	send, err := Run(ctx, cfg.Config, g, sendFn)
	stopProbe()
	wg.Wait()
	res.Send = send
	if err != nil {
		return res, err
	}
	res.Probes = probe.sent
	res.Probe = Summarise(probe.lat)
	res.WantSum = baseSum.Add(Decimal(send.SumCents + 100*probe.sent))
	res.WantCount = baseCount.Add(decimal.NewFromInt(send.Events + probe.sent))
	if !verify {
		return res, nil
	}
	q.To = Window(time.Now(), 0).To
	deadline := time.Now().Add(cfg.SettleTimeout)
	for {
		res.GotSum, res.GotCount, err = Totals(ctx, c, res.SumMeter, res.CountMeter, q)
		if err == nil && res.Exact() {
			res.Queryable = time.Since(send.LastAck)
			return res, nil
		}
		if err != nil && !client.Retryable(err) {
			return res, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, nil
		}
		time.Sleep(cfg.Poll)
	}
}

// Window returns a query range on whole minutes that covers events sent
// from now on with times moved back by up to spread.
func Window(now time.Time, spread time.Duration) client.Query {
	return client.Query{
		From: now.Add(-spread).Add(-time.Minute).Truncate(time.Minute),
		To:   now.Add(2 * time.Minute).Truncate(time.Minute),
	}
}

// Totals returns the totals of a SUM and a COUNT meter over q.
func Totals(ctx context.Context, c *client.Client, sumMeter, countMeter string, q client.Query) (sum, count decimal.Decimal, err error) {
	if sum, err = Total(ctx, c, sumMeter, q); err != nil {
		return
	}
	count, err = Total(ctx, c, countMeter, q)
	return
}

// Total returns the sum of every row's value of a meter query.
func Total(ctx context.Context, c *client.Client, meter string, q client.Query) (decimal.Decimal, error) {
	r, err := c.QueryMeter(ctx, meter, q)
	if err != nil {
		return decimal.Zero, err
	}
	t := decimal.Zero
	for _, row := range r.Data {
		v, err := decimal.NewFromString(row.Value.String())
		if err != nil {
			return decimal.Zero, fmt.Errorf("meter %s answered a value %q that is not a decimal: %w", meter, row.Value, err)
		}
		t = t.Add(v)
	}
	return t, nil
}

// prober sends one marker event with a fresh subject at a time and times
// how long after its ack the COUNT meter shows it.
type prober struct {
	sent int64
	lat  []time.Duration
}

func (p *prober) run(ctx context.Context, c *client.Client, g *Gen, countMeter string, every, poll time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		subject := fmt.Sprintf("probe-%s-%d", g.Run, n)
		now := time.Now()
		body := fmt.Sprintf(`{"specversion":"1.0","id":"%s-probe-%d","source":%q,"type":%q,"subject":%q,"time":%q,"data":{"value":1,"model":"probe"}}`,
			g.Run, n, g.Source, g.Type, subject, now.UTC().Format(time.RFC3339Nano))
		// The probe must be counted whatever happens, so it is retried
		// even after the load stops (with a bound).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		_, err := client.Retry(sctx, client.Backoff{}, func(ctx context.Context) error {
			return c.SendEvents(ctx, client.ContentTypeEvent, []byte(body))
		})
		cancel()
		if err != nil {
			continue // not acknowledged: not counted in the expected totals either
		}
		p.sent++
		acked := time.Now()
		q := Window(now, 0)
		q.Subjects = []string{subject}
		for ctx.Err() == nil || time.Since(acked) < 10*time.Second {
			v, err := Total(context.WithoutCancel(ctx), c, countMeter, q)
			if err == nil && v.Equal(decimal.NewFromInt(1)) {
				p.lat = append(p.lat, time.Since(acked))
				break
			}
			if err != nil && !client.Retryable(err) && !errors.Is(err, context.Canceled) {
				break
			}
			time.Sleep(poll)
		}
	}
}
