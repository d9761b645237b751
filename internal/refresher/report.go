package refresher

import (
	"context"
	"fmt"
	"time"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// report writes one provider's log line and metrics. tok is the token consumers read
// after the run, nil when there is none; it is logged by its fingerprint only.
func (r *Refresher) report(ctx context.Context, o Outcome, tok *tokens.Token, elapsed time.Duration) {
	var expiresAt time.Time
	var fingerprint string
	if tok != nil {
		expiresAt, fingerprint = tok.ExpiresAt, fingerprintOf(*tok)
	}
	now := r.now()
	degraded := tok != nil && tok.RefusedSecretVersion != "" && tok.Valid(now)
	r.Metrics.observe(now, o.Provider, o.Status, elapsed, expiresAt, degraded)
	if r.Log == nil {
		return
	}
	attrs := []any{"provider", o.Provider, "status", o.Status}
	if o.ExpiresAt != "" {
		attrs = append(attrs, "expires_at", o.ExpiresAt)
	}
	if fingerprint != "" {
		attrs = append(attrs, "token_fingerprint", fingerprint)
	}
	if elapsed > 0 {
		attrs = append(attrs, "duration_ms", elapsed.Milliseconds())
	}
	switch {
	case o.Error != "":
		r.Log.ErrorContext(ctx, "token refresh failed", append(attrs, "error", o.Error)...)
	case o.Note != "" && o.Status == StatusSkipped:
		r.Log.WarnContext(ctx, "token not due", append(attrs, "reason", o.Reason, "note", o.Note)...)
	case o.Note != "":
		r.Log.WarnContext(ctx, "token refreshed", append(attrs, "note", o.Note)...)
	case o.Status == StatusSkipped:
		r.Log.InfoContext(ctx, "token not due", append(attrs, "reason", o.Reason)...)
	case o.Status == StatusQueued:
		r.Log.InfoContext(ctx, "token sent to the workers", append(attrs, "reason", o.Reason)...)
	case o.Status == StatusPending:
		r.Log.InfoContext(ctx, "token rotation waiting for a later run", append(attrs, "reason", o.Reason)...)
	default:
		r.Log.InfoContext(ctx, "token refreshed", attrs...)
	}
}

// failures summarises the failed outcomes as one error wrapping ErrFailed, or nil.
func failures(outcomes []Outcome) error {
	var failed []string
	for _, o := range outcomes {
		if o.Status == StatusFailed {
			failed = append(failed, fmt.Sprintf("%s (%s)", o.Provider, o.Error))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d providers: %s", ErrFailed, len(failed), len(outcomes), list(failed, maxNamed, "; "))
}
