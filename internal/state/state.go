// Package state keeps what the refresher records about its own work, apart from
// the tokens: each provider's health, and the run record that lets an idle run end
// after one read. Both are String parameters (they hold no secret and no token)
// under a prefix of their own, beside the token prefix and not under it, so a reader
// with the consumers' policy never meets them among the tokens.
//
//	<prefix>/health/<provider>   one Health per provider that has ever failed
//	<prefix>/run                 the Run record
//
// Health is written only when it changes: a provider that never failed has no
// record and is healthy. What changes with every refresh (the last success, which
// is the token's issue time, its expiry, when it is next due) is written with the
// token itself, in its parameter's description (see package store), so a refresh
// costs no extra write.
//
// When a run may trust the run record, and why that is safe, is explained once, in
// docs/design.md (Idle runs).
package state

import (
	"slices"
	"time"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// Condition is a provider's health.
type Condition string

// Conditions.
const (
	// Healthy: the last attempt got a token with the current client secret, or
	// there has been no attempt since the provider last recovered.
	Healthy Condition = "healthy"
	// Degraded: a valid token is published, but the last refresh failed, or the
	// token was obtained with the previous client secret (AWSPREVIOUS).
	Degraded Condition = "degraded"
	// Failing: no valid token is published and the last refresh failed.
	Failing Condition = "failing"
)

// maxErrorLen bounds the reason kept in a record.
const maxErrorLen = 512

// Health is one provider's recorded health.
type Health struct {
	Provider string    `json:"provider"`
	State    Condition `json:"state"`
	// Since is when the provider entered State.
	Since time.Time `json:"since"`
	// Reason says why the provider is degraded or failing.
	Reason string `json:"reason,omitempty"`
	// LastFailure and LastError are the last failed attempt and its error
	// (bounded, never secret); they stay after a recovery.
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
}

// Attempt is what one refresh of a provider came to.
type Attempt struct {
	At time.Time
	// Published: a new token was published.
	Published bool
	// Degraded: the token now published was obtained with the previous client secret.
	Degraded bool
	// Warning, with a published token, makes the provider degraded for this
	// reason although the refresh worked (a client certificate about to expire).
	Warning string
	// Valid: a valid token is published after the attempt (the new one, or the old
	// one a failed attempt left in place).
	Valid bool
	// Error is why the attempt failed; empty when it did not.
	Error string
}

// Next is the health after attempt a, given the recorded health prev (the zero
// Health when there is no record), and whether it must be written: a provider that
// never failed and is healthy needs no record, and an unchanged one no write.
func Next(prev Health, provider string, a Attempt) (Health, bool) {
	next := prev
	next.Provider = provider
	if prev.State == "" {
		next.State = Healthy
	}
	switch {
	case a.Published && a.Degraded:
		next.State = Degraded
		next.Reason = "running on the previous client secret (AWSPREVIOUS): the current one was refused"
		next.ConsecutiveFailures = 0
	case a.Published && a.Warning != "":
		next.State, next.Reason = Degraded, cut.String(a.Warning, maxErrorLen)
		next.ConsecutiveFailures = 0
	case a.Published:
		next.State, next.Reason = Healthy, ""
		next.ConsecutiveFailures = 0
	default:
		next.ConsecutiveFailures++
		next.LastFailure = a.At
		next.LastError = cut.String(a.Error, maxErrorLen)
		next.State, next.Reason = Degraded, "the last refresh failed; the published token is still valid"
		if !a.Valid {
			next.State, next.Reason = Failing, "no valid token is published and the last refresh failed"
		}
	}
	if next.State != prev.State {
		next.Since = a.At
	}
	if prev.State == "" && next.State == Healthy {
		return next, false // healthy and never failed: no record needed
	}
	changed := next.State != prev.State || next.Reason != prev.Reason ||
		next.ConsecutiveFailures != prev.ConsecutiveFailures || next.LastError != prev.LastError
	return next, changed
}

// Run is the record of the last run that read every published token. An idle
// scheduled run that finds it current ends after reading it.
type Run struct {
	// Registry is the fingerprint of the registry and of the settings the decisions
	// depend on; a run with another fingerprint reads everything.
	Registry string `json:"registry"`
	// NextDue is the earliest time any token becomes due; zero when a provider is
	// failing or has no token, so that the next run reads everything.
	NextDue time.Time `json:"next_due,omitzero"`
	// MinExpiry is the soonest expiry of the published tokens, for the expiry
	// metric of runs that read nothing else.
	MinExpiry time.Time `json:"min_expiry,omitzero"`
	// FullRead is when that run read the tokens.
	FullRead time.Time `json:"full_read"`
	// Rotations are the rotations requested that no run has finished yet: a
	// rotation larger than what one run can write at the write budget. While a
	// provider one of them names has a token issued before its At, that token is
	// due, and the record lets no run end early.
	Rotations []Rotation `json:"rotations,omitempty"`
}

// Rotation is a rotation request that is still waiting for some of its
// providers. It is done for a provider once the provider's published token was
// issued at or after At, cut to the second as a token's issued_at is: so runs
// that come after each other never rotate a provider twice for one request.
type Rotation struct {
	// At is when the run that was asked to rotate read the tokens.
	At time.Time `json:"at"`
	// All says the rotation is for every provider of the registry; Providers is
	// then empty.
	All bool `json:"all,omitempty"`
	// Providers names the providers still waiting, when not All.
	Providers []string `json:"providers,omitempty"`
}

// Covers says whether rot is for provider.
func (rot Rotation) Covers(provider string) bool {
	return rot.All || slices.Contains(rot.Providers, provider)
}

// Done says whether a token issued at issued satisfies rot.
func (rot Rotation) Done(issued time.Time) bool {
	return !issued.Before(rot.At.Truncate(time.Second))
}

// Current reports whether r lets a run at now, whose registry and settings have
// the fingerprint registry, end without reading the tokens: r is for the same
// registry, no rotation is waiting, nothing is due before now, and the last full read is less than
// reconcile ago.
func (r Run) Current(now time.Time, registry string, reconcile time.Duration) bool {
	return r.Registry != "" && r.Registry == registry && len(r.Rotations) == 0 && !r.NextDue.IsZero() && now.Before(r.NextDue) &&
		!r.FullRead.IsZero() && now.Sub(r.FullRead) < reconcile && !r.FullRead.After(now)
}
