package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff says how long to wait between attempts: Initial, doubled after
// each failure up to Max, with ±20% jitter so many clients do not retry in
// step; a server's Retry-After is honoured when it asks for longer.
type Backoff struct {
	Initial     time.Duration // default 100 ms
	Max         time.Duration // default 5 s
	MaxAttempts int           // 0: no limit, until the context ends
	// Sleep waits for d or until ctx ends; tests replace it to run without
	// sleeping. Nil uses a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// WithDefaults returns b with zero fields set to their defaults.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Sleep == nil {
		b.Sleep = sleep
	}
	return b
}

// Delay returns the wait before attempt number attempt+1, after attempt
// (1-based) failed with err.
func (b Backoff) Delay(attempt int, err error) time.Duration {
	b = b.WithDefaults()
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) // jitter, not an amount
	if ra := RetryAfter(err); ra > d {
		d = ra
	}
	return d
}

// Retry calls fn until it succeeds, fails with an error that is not
// Retryable, the attempts run out or ctx ends. It returns the number of
// attempts made and the last error (wrapped with the attempt count when
// attempts ran out). fn must send the same request every time.
func Retry(ctx context.Context, b Backoff, fn func(ctx context.Context) error) (int, error) {
	b = b.WithDefaults()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !Retryable(err) {
			return attempt, err
		}
		if b.MaxAttempts > 0 && attempt >= b.MaxAttempts {
			return attempt, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		if ctx.Err() != nil {
			return attempt, fmt.Errorf("stopped retrying: %w (last error: %w)", ctx.Err(), err)
		}
		if serr := b.Sleep(ctx, b.Delay(attempt, err)); serr != nil {
			return attempt, fmt.Errorf("stopped retrying: %w (last error: %w)", serr, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
