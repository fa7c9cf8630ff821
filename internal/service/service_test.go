package service

import (
	"context"
	"errors"
	"testing"
)

func TestFuncLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stopped := make(chan struct{})
	f := NewFunc("x", func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return nil
	})
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := f.Ready(ctx); err == nil {
		t.Fatal("Ready before Start succeeded")
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready while running: %v", err)
	}
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-stopped
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestFuncFailureMakesNotReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	boom := errors.New("boom")
	f := NewFunc("x", func(context.Context) error { return boom })
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Stop(ctx); !errors.Is(err, boom) {
		t.Fatalf("Stop returned %v, want boom", err)
	}
	if err := f.Ready(ctx); !errors.Is(err, boom) {
		t.Fatalf("Ready returned %v, want boom", err)
	}
}
