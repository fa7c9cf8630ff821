// Package service is the one lifecycle every role follows:
//
//	new ──Start──▶ running ──Stop──▶ stopped
//	 │                                  ▲
//	 └──────────────Stop────────────────┘   (Stop before Start is a no-op)
//
// Start returns once the service is running; Stop waits for it to finish
// its work in hand and is safe to call twice. Ready reports, for /readyz,
// whether the service can do its job right now.
package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Service is a long-running part of the process.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) error
}

// Func is a Service that runs a function until its context is cancelled.
// A run function returning early with an error makes Ready fail and is
// reported by Err.
type Func struct {
	name string
	run  func(ctx context.Context) error

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// NewFunc returns a Service that runs run.
func NewFunc(name string, run func(ctx context.Context) error) *Func {
	return &Func{name: name, run: run}
}

func (f *Func) Name() string { return f.name }

// Start runs the function in a goroutine. ctx's values are kept but its
// cancellation is not: only Stop ends the run, so shutdown is ordered.
func (f *Func) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return fmt.Errorf("service %s: already started", f.name)
	}
	f.started = true
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		err := f.run(rctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
		}
	}()
	return nil
}

// Stop cancels the run and waits for it to return, or for ctx to end.
func (f *Func) Stop(ctx context.Context) error {
	f.mu.Lock()
	if !f.started {
		f.mu.Unlock()
		return nil
	}
	f.cancel()
	done := f.done
	f.mu.Unlock()
	select {
	case <-done:
		return f.Err()
	case <-ctx.Done():
		return fmt.Errorf("service %s: did not stop in time: %w", f.name, ctx.Err())
	}
}

// Ready fails when the run has ended on its own.
func (f *Func) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return errors.New("not started")
	}
	select {
	case <-f.done:
		if f.err != nil {
			return fmt.Errorf("stopped: %w", f.err)
		}
		return errors.New("stopped")
	default:
		return nil
	}
}

// Err returns the error the run ended with, if any.
func (f *Func) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
