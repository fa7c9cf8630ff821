package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// idempotency makes POSTs with an Idempotency-Key safe to retry: the
// first request's response is stored per tenant and key; the same key with
// the same body gets that response again (Idempotent-Replayed: true); the
// same key with another body is refused with 422. A key is claimed before
// the handler runs, so two concurrent retries never both execute.
//
// The claim is marked committed inside the handler's first write
// transaction (a db commit hook), so "the handler changed data" and "the
// claim says so" commit together. That decides what a retry may do when
// no response was stored:
//
//	claimed ──handler answers──▶ stored (replayed to every retry)
//	   │  │
//	   │  └─handler's write commits──▶ committed ──answers──▶ stored
//	   │                                   │
//	   │                       5xx, or the process dies
//	   │                                   ▼
//	   │                     outcome unknown: 409, never run again
//	   │
//	   └─5xx before any commit, or the process dies and a minute passes──▶
//	     released: a retry claims the key and runs the handler
type idempotency struct {
	db  *db.DB
	log *slog.Logger
}

// claimTimeout is how long a claim without a stored response blocks the
// key; after it the claim is taken as abandoned (the process died), or,
// when its handler had committed, as an outcome that was never answered.
const claimTimeout = time.Minute

// errClaimLost fails the transaction of a handler whose claim was taken
// over by a retry (it ran longer than claimTimeout before writing): the
// retry runs the request, so this attempt must not apply it too.
var errClaimLost = abacus.Conflict("idempotency_claim_lost",
	"this request ran longer than a minute before it changed anything, and a retry with the same Idempotency-Key took its place; this attempt was not applied, the retry's answer is the outcome")

func (i *idempotency) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || i.db == nil { // reads cost nothing here
			next.ServeHTTP(w, r)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		p := abacus.PrincipalFrom(r.Context())
		if key == "" || p == nil {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 {
			WriteError(w, r, i.log, abacus.Invalid("invalid_idempotency_key", "Idempotency-Key must be at most 255 characters").
				WithField("header.Idempotency-Key", "longer than 255 characters"))
			return
		}
		body, err := ReadBody(r)
		if err != nil {
			WriteError(w, r, i.log, err)
			return
		}
		sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\n" + string(body)))
		c := &keyClaim{tenant: p.TenantID, key: key, hash: hex.EncodeToString(sum[:]), id: abacus.NewID("idc"), at: time.Now()}
		claimed, stored, err := i.claim(r.Context(), c, r)
		if err != nil {
			WriteError(w, r, i.log, err)
			return
		}
		if !claimed {
			answerStored(w, r, c, stored)
			return
		}
		r.Body = readCloser{bytes.NewReader(body)}
		cap := &recorder{ResponseWriter: w, body: &bytes.Buffer{}}
		next.ServeHTTP(cap, r.WithContext(db.WithCommitHook(r.Context(), c.markCommitted)))
		c.done.Store(true)
		i.record(r.Context(), c, cap)
	})
}

// keyClaim is one request's hold on an Idempotency-Key.
type keyClaim struct {
	tenant, key, hash string
	id                string    // this claim of the key, among the claims of it over time
	at                time.Time // when it was claimed
	// marked is set once a transaction that marked the claim committed;
	// later transactions need not mark it again. done is set when the
	// handler has returned: what commits afterwards (work it left running)
	// is not its answer's effect.
	marked, done atomic.Bool
}

// markCommitted is the claim's commit hook: it marks the claim committed
// in the transaction about to commit, or fails it if the claim is no
// longer this request's.
func (c *keyClaim) markCommitted(ctx context.Context, tx *db.Tx) error {
	if c.marked.Load() || c.done.Load() {
		return nil
	}
	// Prepared: on SQLite it runs in the writer's transaction, where
	// parsing it anew each time would hold every other writer longer.
	res, err := tx.ExecPrepared(ctx, `UPDATE idempotency_keys SET committed_at = COALESCE(committed_at, $1)
		WHERE tenant_id = $2 AND key = $3 AND claim = $4`, db.TimeOf(time.Now()), c.tenant, c.key, c.id)
	if err != nil {
		return fmt.Errorf("marking the Idempotency-Key claim committed: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("marking the Idempotency-Key claim committed: %w", err)
	}
	if n == 0 {
		return errClaimLost
	}
	tx.AfterCommit(func() { c.marked.Store(true) })
	return nil
}

// record stores the handler's answer, or releases the claim when the
// answer is not worth replaying and nothing was committed.
func (i *idempotency) record(ctx context.Context, c *keyClaim, cap *recorder) {
	// A fresh context: the client may have gone, the outcome still has to
	// be recorded.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	status, contentType, body := cap.status, cap.Header().Get("Content-Type"), cap.body.Bytes()
	// A 499 is released like a 5xx: the request's context ended before
	// its handler finished, and replaying "the client closed the request"
	// to the client's retry would tell it nothing.
	if status >= 500 || status == 0 || status == statusClientClosed {
		released, err := i.release(sctx, c)
		if err != nil || released {
			i.logRecordError(ctx, err)
			return
		}
		// The handler committed something, then failed: running it again
		// could apply it twice, so its retries are told so.
		status, contentType, body = outcomeUnknownBody(ctx, c.at)
	}
	_, err := i.db.ExecContext(sctx, `UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3
		WHERE tenant_id = $4 AND key = $5 AND claim = $6`, status, contentType, body, c.tenant, c.key, c.id)
	i.logRecordError(ctx, err)
}

// release deletes the claim if its handler committed nothing, and reports
// whether it did.
func (i *idempotency) release(ctx context.Context, c *keyClaim) (bool, error) {
	res, err := i.db.ExecContext(ctx, `DELETE FROM idempotency_keys
		WHERE tenant_id = $1 AND key = $2 AND claim = $3 AND committed_at IS NULL`, c.tenant, c.key, c.id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (i *idempotency) logRecordError(ctx context.Context, err error) {
	if err != nil {
		i.log.ErrorContext(ctx, "recording idempotent response", "err", err, "request_id", RequestID(ctx))
	}
}

type storedResponse struct {
	claim       string
	hash        string
	status      int
	contentType string
	body        []byte
	createdAt   db.Time
	committedAt db.NullTime
	requestID   string
}

// answerStored answers a request whose key another request claimed.
func answerStored(w http.ResponseWriter, r *http.Request, c *keyClaim, st storedResponse) {
	switch {
	case st.hash != c.hash:
		WriteProblem(w, r, newProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used with a different request; use a new key for a new request"))
	case st.status == 0 && st.committedAt.Valid && time.Since(st.createdAt.Time) > claimTimeout:
		WriteProblem(w, r, outcomeUnknown(st.requestID, st.createdAt.Time))
	case st.status == 0:
		pr := newProblem(http.StatusConflict, "idempotency_request_in_progress",
			"a request with this Idempotency-Key is still being processed; retry shortly")
		pr.retryAfter = 1
		WriteProblem(w, r, pr)
	default:
		w.Header().Set("Content-Type", st.contentType)
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(st.status)
		_, _ = w.Write(st.body)
	}
}

// outcomeUnknown answers the retry of a request that changed data but
// whose answer was never stored. "Changed data" is all that is known: the
// change may be the request's whole effect, part of it, or only a write
// made on the way (a cache, a default created on first use).
func outcomeUnknown(requestID string, at time.Time) *Problem {
	first := "the request first sent with this Idempotency-Key at " + at.UTC().Format(time.RFC3339)
	if requestID != "" {
		first += " (request " + requestID + ")"
	}
	return newProblem(http.StatusConflict, "idempotency_outcome_unknown", first+
		" changed data, but the server failed or stopped before its answer was recorded; it may have been applied, so it is not run again."+
		" Look the result up (for example in the list of what it creates), or send it with a new key to apply it again")
}

// outcomeUnknownBody is outcomeUnknown as the stored response of the
// request on ctx, which failed after it committed.
func outcomeUnknownBody(ctx context.Context, at time.Time) (int, string, []byte) {
	p := outcomeUnknown(RequestID(ctx), at)
	p.finish(ctx)
	var b bytes.Buffer
	_ = jsonFormat.Marshal(&b, p)
	return p.Status, "application/problem+json", b.Bytes()
}

// claim claims c's key for this request, or returns what another claim of
// it stored. A claim left by a process that died before committing
// anything is taken over after claimTimeout.
func (i *idempotency) claim(ctx context.Context, c *keyClaim, r *http.Request) (bool, storedResponse, error) {
	var st storedResponse
	for attempt := 0; attempt < 2; attempt++ {
		_, err := i.db.ExecContext(ctx, `INSERT INTO idempotency_keys
			(tenant_id, key, method, path, request_hash, status, content_type, body, created_at, claim, request_id)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6, $7, $8, $9)`,
			c.tenant, c.key, r.Method, r.URL.Path, c.hash, []byte{}, db.TimeOf(c.at), c.id, RequestID(ctx))
		if err == nil {
			return true, st, nil
		}
		if !db.IsUniqueViolation(err) {
			return false, st, err
		}
		err = i.db.QueryRowContext(ctx, `SELECT claim, request_hash, status, content_type, body, created_at, committed_at, request_id
			FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`, c.tenant, c.key).
			Scan(&st.claim, &st.hash, &st.status, &st.contentType, &st.body, &st.createdAt, &st.committedAt, &st.requestID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released meanwhile; claim again
		}
		if err != nil {
			return false, st, err
		}
		if st.status == 0 && !st.committedAt.Valid && time.Since(st.createdAt.Time) > claimTimeout {
			// Abandoned by a process that died before changing anything.
			// The condition is checked again as the row is deleted: its
			// handler may be committing right now.
			if _, err := i.db.ExecContext(ctx, `DELETE FROM idempotency_keys
				WHERE tenant_id = $1 AND key = $2 AND claim = $3 AND status = 0 AND committed_at IS NULL`, c.tenant, c.key, st.claim); err != nil {
				return false, st, err
			}
			continue
		}
		return false, st, nil
	}
	return false, st, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
