package refresher

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/token-refresher/token-refresher/internal/state"
)

// idle ends a scheduled run that the run record shows to have nothing to do: the
// record was made with this registry and these settings, nothing is due before it
// says, and its full read is less than Reconcile old. Anything else (no record, an
// unreadable one, a rotation, a secret change, a manual refresh) reads every
// token. An idle run still reports the soonest expiry, which the expiry alarm
// watches.
//
// The record it read also tells the run which rotations still wait (see pending.go).
func (u *run) idle(ctx context.Context, req Request) (Result, bool) {
	r := u.r
	if r.State == nil || req.Action != ActionRefresh || req.Trigger != TriggerSchedule {
		return Result{}, false
	}
	rec, _, err := r.State.Run(ctx)
	if err != nil {
		r.logWarn(ctx, "run record unreadable; reading every token", "error", bound(err.Error()))
		return Result{}, false
	}
	u.useRecord(rec)
	now := r.now()
	if !rec.Current(now, r.fingerprint(), r.reconcile()) {
		return Result{}, false
	}
	r.Metrics.observeSoonest(now, rec.MinExpiry)
	return Result{Results: []Outcome{}, NextDue: stamp(rec.NextDue), Idle: true}, true
}

// record writes what the run learnt: the health of every provider it tried, when
// it changed, and the run record, so that idle runs can end early until the next
// token is due. It returns when the next token is due, or "" when the next run
// must read every token (something failed or has no token). Failures here are
// logged, not fatal: the tokens are what matter, and the next run reads everything
// when the record is missing.
func (u *run) record() string {
	r := u.r
	if r.State == nil {
		return ""
	}
	u.recordHealth()
	// Only a run that knows the rotations still waiting may write the record,
	// which replaces them.
	u.loadRotations(u.publish)
	u.rotations = u.waiting()
	rec := state.Run{Registry: r.fingerprint(), FullRead: u.started, Rotations: u.rotations}
	rec.MinExpiry, rec.NextDue = u.nextDue(r.now())
	next, kept := u.putRun(rec)
	if u.unreached != nil {
		u.settle(kept && u.recordRead)
	}
	return next
}

// nextDue is the soonest expiry of the published tokens and the earliest time any
// becomes due; that time is zero when one has no valid token, is due (a rotation
// waiting included), or failed, so that the next run reads every token.
func (u *run) nextDue(now time.Time) (minExpiry, next time.Time) {
	r := u.r
	for i, p := range r.Providers.Providers() {
		cur, ok := u.published[p.Parameter]
		if !ok || !cur.Valid(now) {
			return minExpiry, time.Time{}
		}
		if minExpiry.IsZero() || cur.ExpiresAt.Before(minExpiry) {
			minExpiry = cur.ExpiresAt
		}
		d := u.decide(now, p, &cur, false)
		if d.Due {
			return minExpiry, time.Time{}
		}
		if i == 0 || d.RefreshAt.Before(next) {
			next = d.RefreshAt
		}
	}
	for _, o := range u.outcomes {
		if o.Status == StatusFailed {
			return minExpiry, time.Time{}
		}
	}
	return minExpiry, next
}

// putRun writes rec; kept says it was written.
func (u *run) putRun(rec state.Run) (next string, kept bool) {
	r, ctx := u.r, u.publish
	if err := r.State.PutRun(ctx, rec); err != nil {
		r.logWarn(ctx, "run record not written; the next run reads every token", "error", bound(err.Error()))
		return "", false
	}
	if rec.NextDue.IsZero() {
		return "", true
	}
	return stamp(rec.NextDue), true
}

// recordHealth brings the health record of every provider the run tried up to
// date, writing only those that changed.
func (u *run) recordHealth() {
	r, ctx := u.r, u.publish
	var tried []due
	var names []string
	for _, j := range u.due {
		// A queued provider's worker records it; an unreached one was not tried.
		if u.outcomes[j.i].Status != StatusQueued && (u.unreached == nil || !u.unreached[j.i]) {
			tried = append(tried, j)
			names = append(names, j.p.Name)
		}
	}
	if len(tried) == 0 {
		return
	}
	prev, err := r.State.Health(ctx, names)
	if err != nil {
		r.logWarn(ctx, "health records unreadable; not updated", "error", bound(err.Error()))
		return
	}
	now := r.now()
	for _, j := range tried {
		o := u.outcomes[j.i]
		cur, ok := u.published[j.p.Parameter]
		a := state.Attempt{At: now, Published: o.Status == StatusRefreshed, Valid: ok && cur.Valid(now), Error: o.Error}
		a.Degraded = a.Published && cur.RefusedSecretVersion != ""
		if a.Published {
			a.Warning = o.warning
		}
		next, changed := state.Next(prev[j.p.Name], j.p.Name, a)
		if !changed {
			continue
		}
		if err := r.State.PutHealth(ctx, next); err != nil {
			r.logWarn(ctx, "health record not written", "provider", j.p.Name, "error", bound(err.Error()))
			continue
		}
		if r.Log != nil && next.State != prev[j.p.Name].State {
			r.Log.InfoContext(ctx, "provider health changed", "provider", j.p.Name, "state", next.State,
				"was", cmp.Or(prev[j.p.Name].State, state.Healthy), "reason", next.Reason)
		}
	}
}

// fingerprint identifies the registry and the settings decisions depend on.
func (r *Refresher) fingerprint() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%s", r.Providers.Fingerprint(),
		r.Policy.minWindow(), r.Policy.ConsumerCache, r.reconcile()))
	return hex.EncodeToString(sum[:])
}

func (r *Refresher) reconcile() time.Duration {
	if r.Reconcile > 0 {
		return r.Reconcile
	}
	return DefaultReconcile
}

func (r *Refresher) logWarn(ctx context.Context, msg string, attrs ...any) {
	if r.Log != nil {
		r.Log.WarnContext(ctx, msg, attrs...)
	}
}
