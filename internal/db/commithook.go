package db

import (
	"context"
	"slices"
)

// CommitHook runs inside a write transaction just before it commits, so
// what it writes commits with the transaction's own changes or not at all.
// An error rolls the transaction back and is returned by the call that
// ran it (InTx, or ExecContext). It must write through tx only.
type CommitHook func(ctx context.Context, tx *Tx) error

type commitHooksKey struct{}

// WithCommitHook returns a context whose write transactions run h just
// before they commit: every InTx, and every DB.ExecContext, which then runs
// in a transaction of its own. It lets an edge (the HTTP idempotency
// layer) tie a record of its own to whatever a handler commits, without
// the handler knowing. Hooks added earlier run first.
//
// Writes that do not run with this context — a group commit on a
// goroutine of its own, a pgx connection from Pool — do not see h, unless
// they run it themselves (RunCommitHooks).
func WithCommitHook(ctx context.Context, h CommitHook) context.Context {
	hs, _ := ctx.Value(commitHooksKey{}).([]CommitHook)
	return context.WithValue(ctx, commitHooksKey{}, append(slices.Clip(hs), h))
}

func commitHooks(ctx context.Context) []CommitHook {
	hs, _ := ctx.Value(commitHooksKey{}).([]CommitHook)
	return hs
}

// RunCommitHooks runs ctx's hooks in tx: for a group commit that stores
// several requests' writes in one transaction of its own, each request's
// hooks (call it with each request's context).
func RunCommitHooks(ctx context.Context, tx *Tx) error { return runCommitHooks(ctx, tx) }

// runCommitHooks runs ctx's hooks in tx. The hooks get a context without
// hooks, so a hook that writes cannot run itself again.
func runCommitHooks(ctx context.Context, tx *Tx) error {
	hs := commitHooks(ctx)
	if len(hs) == 0 {
		return nil
	}
	ctx = context.WithValue(ctx, commitHooksKey{}, []CommitHook(nil))
	for _, h := range hs {
		if err := h(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// HasCommitHooks reports whether ctx carries commit hooks.
func HasCommitHooks(ctx context.Context) bool { return ctx != nil && len(commitHooks(ctx)) > 0 }
