package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// idempotency makes POSTs with an Idempotency-Key safe to retry: the
// first request's response is stored per tenant and key; the same key with
// the same body gets that response again (Idempotent-Replayed: true); the
// same key with another body is refused with 422. A key is claimed before
// the handler runs, so two concurrent retries never both execute; a claim
// whose handler failed with 5xx is released so the client can retry.
type idempotency struct {
	db  *db.DB
	log *slog.Logger
}

// claimTimeout is how long a claim without a stored response blocks the
// key; after it the claim is taken as abandoned (the process died).
const claimTimeout = time.Minute

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
		hash := hex.EncodeToString(sum[:])
		ctx := r.Context()
		claimed, stored, err := i.claim(ctx, p.TenantID, key, r, hash)
		if err != nil {
			WriteError(w, r, i.log, err)
			return
		}
		if !claimed {
			switch {
			case stored.hash != hash:
				WriteProblem(w, r, newProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used with a different request; use a new key for a new request"))
			case stored.status == 0:
				pr := newProblem(http.StatusConflict, "idempotency_request_in_progress",
					"a request with this Idempotency-Key is still being processed; retry shortly")
				pr.retryAfter = 1
				WriteProblem(w, r, pr)
			default:
				w.Header().Set("Content-Type", stored.contentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(stored.status)
				_, _ = w.Write(stored.body)
			}
			return
		}
		r.Body = readCloser{bytes.NewReader(body)}
		cap := &recorder{ResponseWriter: w, body: &bytes.Buffer{}}
		next.ServeHTTP(cap, r)
		// Store with a fresh context: the client may have gone, the
		// outcome still has to be recorded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// A 499 is released like a 5xx: the request's context ended
		// before its handler finished, and replaying "the client closed
		// the request" to the client's retry would tell it nothing.
		if cap.status >= 500 || cap.status == 0 || cap.status == statusClientClosed {
			_, err = i.db.ExecContext(sctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`, p.TenantID, key)
		} else {
			_, err = i.db.ExecContext(sctx, `UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3
				WHERE tenant_id = $4 AND key = $5`, cap.status, cap.Header().Get("Content-Type"), cap.body.Bytes(), p.TenantID, key)
		}
		if err != nil {
			i.log.ErrorContext(ctx, "recording idempotent response", "err", err, "request_id", RequestID(ctx))
		}
	})
}

type storedResponse struct {
	hash        string
	status      int
	contentType string
	body        []byte
	createdAt   db.Time
}

func (i *idempotency) claim(ctx context.Context, tenant, key string, r *http.Request, hash string) (bool, storedResponse, error) {
	var st storedResponse
	for attempt := 0; attempt < 2; attempt++ {
		_, err := i.db.ExecContext(ctx, `INSERT INTO idempotency_keys
			(tenant_id, key, method, path, request_hash, status, content_type, body, created_at)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6, $7)`,
			tenant, key, r.Method, r.URL.Path, hash, []byte{}, db.TimeOf(time.Now()))
		if err == nil {
			return true, st, nil
		}
		if !db.IsUniqueViolation(err) {
			return false, st, err
		}
		err = i.db.QueryRowContext(ctx, `SELECT request_hash, status, content_type, body, created_at
			FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`, tenant, key).
			Scan(&st.hash, &st.status, &st.contentType, &st.body, &st.createdAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released meanwhile; claim again
		}
		if err != nil {
			return false, st, err
		}
		if st.status == 0 && time.Since(st.createdAt.Time) > claimTimeout {
			// Abandoned by a process that died mid-request.
			if _, err := i.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND status = 0`, tenant, key); err != nil {
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
