package dunning

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus/internal/db"
)

// RegisterMetrics exports, on reg, what tells an operator that dunning is
// stuck (deploy/prometheus/alerts.yaml, AbacusDunningStuck):
// abacus_dunning_overdue_seconds, how long the most overdue step of any
// run has been due (0 when none is; read from the database at each
// scrape, so it grows whether the runner is dead, failing or too slow),
// and abacus_dunning_step_failures_total.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "abacus_dunning_overdue_seconds",
		Help: "Seconds since the most overdue dunning step became due (0 when no step is due).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := oldestDue(ctx, s.db, s.now())
		if err != nil {
			s.log.Warn("reading the oldest due dunning step", "err", err)
			return 0
		}
		return d.Seconds()
	}), s.failures)
}

// oldestDue is how long the earliest due step (next_at <= now) has waited.
func oldestDue(ctx context.Context, q db.Querier, now time.Time) (time.Duration, error) {
	var at sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(next_at) FROM dunning_runs WHERE next_at IS NOT NULL AND next_at <= $1`,
		db.TimeOf(now)).Scan(&at); err != nil || !at.Valid {
		return 0, err
	}
	return now.Sub(time.UnixMicro(at.Int64)), nil
}
