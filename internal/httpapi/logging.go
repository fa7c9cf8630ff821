package httpapi

import (
	"context"
	"log/slog"

	"github.com/abacusbilling/abacus"
)

// ContextHandler adds the request id and tenant on a record's context to
// every log line, so a line written anywhere while serving a request can
// be traced back to it. Wrap the process's handler with it.
type ContextHandler struct{ slog.Handler }

// Handle adds request_id and tenant_id when the context carries them.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	x := exchangeFrom(ctx)
	if x != nil {
		r.AddAttrs(slog.String("request_id", x.id))
	}
	p := abacus.PrincipalFrom(ctx)
	if p == nil && x != nil {
		p = x.p
	}
	if p != nil {
		r.AddAttrs(slog.String("tenant_id", p.TenantID))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around derived handlers.
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around derived handlers.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}
