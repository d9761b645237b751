package refresher

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Rotations that wait
//
// A rotation of more providers than one run can write at the write budget before
// its deadline reaches only some of them. The others are not lost: the run keeps
// the rotation in the run record (state.Rotation: when it was asked, and for whom),
// reports each provider it did not reach as pending, and every later run treats a
// token of those providers issued before that time as due, rotating it as a
// rotation does, until each has a token issued after it. A token issued after the
// request is the rotation done, so runs that follow each other never rotate a
// provider twice, and the record drops the rotation once no provider waits for it.
// While one waits, the record lets no scheduled run end early.

// maxWaitingBytes bounds the rotations a record keeps, as JSON: the record is one
// SSM parameter (4 KB Standard, 8 KB Advanced). A rotation of every provider takes
// a few bytes whatever N; a named one that would not fit is not kept, and its
// unreached providers fail as they did before rotations waited.
const maxWaitingBytes = 6000

// waitingReason is the reason of a provider waiting for a rotation asked at at.
func waitingReason(at time.Time) string {
	return "rotation requested at " + stamp(at) + ", waiting for the write budget"
}

// decide is the Refresher's decision with the rotations still waiting: a token
// issued before a rotation that covers its provider is due.
func (u *run) decide(now time.Time, p registry.Provider, cur *tokens.Token, rotate bool) decision {
	if !rotate && cur != nil && cur.Provider == p.Name {
		if at, ok := u.waitsFor(p, cur); ok {
			return decision{Due: true, Reason: waitingReason(at)}
		}
	}
	return u.r.decide(now, p, cur, rotate)
}

// waitsFor says whether p, whose published token is cur (nil: none), waits for one
// of the run's rotations, and the latest such rotation's time.
func (u *run) waitsFor(p registry.Provider, cur *tokens.Token) (time.Time, bool) {
	var at time.Time
	for _, rot := range u.rotations {
		if !rot.Covers(p.Name) || cur != nil && cur.Provider == p.Name && rot.Done(cur.IssuedAt) {
			continue
		}
		if rot.At.After(at) {
			at = rot.At
		}
	}
	return at, !at.IsZero()
}

// remembers says whether a rotated provider that the run could not reach waits
// for a later run rather than failing: when the run keeps a run record. A
// conditional rotation is a consumer's, who asks again; a worker's job comes back
// from the queue instead.
func (u *run) remembers(j due) bool {
	return j.rotate && j.ifToken == "" && !u.worker && !u.dryRun && u.r.State != nil
}

// loadRotations reads the rotations still waiting from the run record, once.
func (u *run) loadRotations(ctx context.Context) {
	if u.recordRead || u.r.State == nil || u.dryRun {
		return
	}
	rec, _, err := u.r.State.Run(ctx)
	if err != nil {
		u.r.logWarn(ctx, "run record unreadable; rotations still waiting are not known", "error", bound(err.Error()))
		return
	}
	u.useRecord(rec)
}

func (u *run) useRecord(rec state.Run) {
	u.rotations, u.recordRead = rec.Rotations, true
}

// waiting is what the run record keeps of the rotations after this run: the ones
// it read and its own, each for the providers still waiting for it (by the tokens
// published now; a provider queued to the workers waits in the queue instead),
// without those a later rotation of all providers covers, and as many as fit.
func (u *run) waiting() []state.Rotation {
	candidates := slices.Clone(u.rotations)
	if u.request != nil {
		candidates = append(candidates, *u.request)
	}
	queued := map[string]bool{}
	for _, o := range u.outcomes {
		if o.Status == StatusQueued {
			queued[o.Provider] = true
		}
	}
	var latestAll time.Time
	for _, rot := range candidates {
		if rot.All && rot.At.After(latestAll) {
			latestAll = rot.At
		}
	}
	var out []state.Rotation
	size := 0
	for _, rot := range candidates {
		if !latestAll.IsZero() && (rot.At.Before(latestAll) || !rot.All && rot.At.Equal(latestAll)) {
			continue // a token issued after the rotation of all is issued after this one too
		}
		var names []string
		some := false
		for _, p := range u.covered(rot) {
			cur, ok := u.published[p.Parameter]
			if queued[p.Name] || ok && cur.Provider == p.Name && rot.Done(cur.IssuedAt) {
				continue
			}
			some = true
			if !rot.All {
				names = append(names, p.Name)
			}
		}
		if !some {
			continue
		}
		kept := state.Rotation{At: rot.At, All: rot.All, Providers: names}
		b, _ := json.Marshal(kept) // a Rotation always marshals
		if size+len(b) > maxWaitingBytes {
			u.r.logWarn(u.publish, "rotation too large to keep in the run record; its providers not reached fail",
				"requested_at", stamp(rot.At), "providers", len(names))
			continue
		}
		size += len(b)
		out = append(out, kept)
	}
	return out
}

// covered lists the registry's providers rot is for.
func (u *run) covered(rot state.Rotation) []registry.Provider {
	if rot.All {
		return u.r.Providers.Providers()
	}
	var out []registry.Provider
	for _, name := range rot.Providers {
		if p, ok := u.r.Providers.Lookup(name); ok { // a provider removed since waits no more
			out = append(out, p)
		}
	}
	return out
}

// settle gives the rotated providers the run did not reach their outcome, once
// the run record is written (kept says so): pending, with the rotation they wait
// for as the reason, or, when the record does not keep it, failed as it stands.
func (u *run) settle(kept bool) {
	for _, j := range u.due {
		if !u.unreached[j.i] {
			continue
		}
		o := u.outcomes[j.i]
		if at, ok := u.waitsFor(j.p, j.cur); ok && kept {
			o = Outcome{Provider: j.p.Name, Status: StatusPending, Reason: waitingReason(at)}
			if j.cur != nil {
				o.ExpiresAt = stamp(j.cur.ExpiresAt)
			}
			u.outcomes[j.i] = o
		} else if u.r.State != nil {
			o.Error = bound(fmt.Sprintf("%s; the rotation could not be kept for a later run", o.Error))
			u.outcomes[j.i] = o
		}
		u.r.report(u.publish, o, j.cur, 0)
	}
}

// providerNames lists the names of ps.
func providerNames(ps []registry.Provider) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}
