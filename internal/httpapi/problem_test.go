package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/httpapi"
)

// A 499 client_closed is only for the request's own cancellation — the
// client went away — seen through the error chain; an error that just
// says "context canceled", or a context the server itself ended (a
// deadline, a cancellation with a cause), is the server's failure.
func TestClientClosedOnlyWhenTheClientLeft(t *testing.T) {
	t.Parallel()
	clientGone := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background()) // as net/http does when the connection closes
		cancel()
		return ctx
	}
	timedOut := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		t.Cleanup(cancel)
		<-ctx.Done()
		return ctx
	}
	stopping := func() context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errors.New("server stopping"))
		return ctx
	}
	wrapped := fmt.Errorf("reading the invoice: %w", context.Canceled)
	text := errors.New("calling the gateway: upstream said: context canceled")
	for _, c := range []struct {
		name   string
		ctx    context.Context
		err    error
		status int
	}{
		{"client gone, the query cancelled with it", clientGone(), wrapped, 499},
		{"client gone, context.Canceled itself", clientGone(), context.Canceled, 499},
		{"client gone, an error that only says so", clientGone(), text, 500},
		{"client gone, a failure of its own", clientGone(), errors.New("disk full"), 500},
		{"server-side timeout, an error that says canceled", timedOut(), text, 500},
		{"server-side timeout, a cancellation in the chain", timedOut(), wrapped, 500},
		{"server stopping with a cause", stopping(), wrapped, 500},
		{"request still live, something else cancelled", context.Background(), wrapped, 500},
	} {
		p := httpapi.ProblemFrom(c.ctx, slog.New(slog.DiscardHandler), c.err)
		if p.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, p.Status, p.Code, c.status)
		}
	}
}
