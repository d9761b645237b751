package refresher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/token-refresher/token-refresher/internal/lease"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Conditional rotation
//
// A consumer whose partner refused the published token asks for a rotation with
// that token's fingerprint (if_token); a fleet asks at once, from as many
// invocations as Lambda runs. A provider is rotated only while its published token
// is still that one, and only by the invocation that takes the provider's lease
// (internal/lease). Having taken it, the winner reads the token again (another
// winner may have published and released between this invocation's read and its
// take) and rotates only if it is still the refused one; it releases the lease
// once its new token is published. A loser waits, boundedly, for the holder to
// release the lease, reads the token again and answers skipped with the newer
// token's fingerprint; or, when the holder is not done in time, skipped "rotation
// in progress". The lease also keeps the provider from being hammered: within
// MIN_FORCED_ROTATION_INTERVAL of the last forced rotation, a conditional rotation
// answers skipped with the time the next one is allowed.

// LeaseStore takes and releases the providers' rotation leases; *lease.Store is one.
type LeaseStore interface {
	Take(ctx context.Context, provider, holder string) (lease.Lease, error)
	Release(ctx context.Context, l lease.Lease) error
	Await(ctx context.Context, provider string, poll time.Duration) (*lease.Record, error)
}

// DefaultLeaseWait is how long an invocation whose conditional rotation found the
// lease held waits for its holder to publish, at most: a token request takes a
// second or two, a slow one with retries more, and the invocation's deadline
// bounds the wait anyway.
const DefaultLeaseWait = 10 * time.Second

// leasePoll is how often a waiting invocation reads the lease (an S3 GetObject,
// not the SSM quota consumers share).
const leasePoll = 200 * time.Millisecond

// holderID names the invocation in the leases it takes: its request id in Lambda,
// a random id elsewhere.
func holderID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "local-" + hex.EncodeToString(b)
}

// sortConditional decides provider p, outcome i, for a conditional rotation of the
// token with fingerprint ifToken, published as read in published. With take set it
// takes the provider's lease, and p joins u.due only when it holds it; without (a
// planner that sends the rotation to the workers), the fingerprint alone decides.
func (u *run) sortConditional(i int, p registry.Provider, published store.Published, ifToken string, take bool) {
	cur, version := tokenOf(published, p)
	skip := func(reason string, tok *tokens.Token) {
		o := Outcome{Provider: p.Name, Status: StatusSkipped, Reason: reason}
		if tok != nil {
			o.ExpiresAt, o.TokenFingerprint = stamp(tok.ExpiresAt), tokens.Fingerprint(tok.AccessToken)
		}
		u.outcomes[i] = o
		u.r.report(u.work, o, tok, 0)
	}
	if why, ok := refusedStill(p, published, cur, ifToken); !ok {
		skip(why, cur)
		return
	}
	if !take {
		u.addDue(due{i: i, p: p, cur: cur, version: version, rotate: true, ifToken: ifToken}, "its published token "+ifToken+" was refused")
		return
	}
	if u.r.Leases == nil {
		u.fail(i, p, cur, "a conditional rotation needs the rotation leases, kept in the registry bucket (REGISTRY_BUCKET), and this deployment has none")
		return
	}
	l, err := u.r.Leases.Take(u.work, p.Name, u.holder())
	var refusal *lease.Refusal
	switch {
	case err == nil:
	case errors.As(err, &refusal) && !refusal.Held:
		// Within the interval: read again, to answer with the token consumers read now.
		if now, _, rerr := u.reread(p); rerr == nil && now != nil && tokens.Fingerprint(now.AccessToken) != ifToken {
			skip("rotated since the token was refused", now)
			return
		}
		skip("at most one forced rotation per MIN_FORCED_ROTATION_INTERVAL: "+refusal.Error(), cur)
		return
	case refusal != nil || errors.Is(err, lease.ErrConflict):
		u.awaitHolder(i, p, cur, ifToken, skip)
		return
	default:
		u.fail(i, p, cur, "the rotation lease could not be taken: "+bound(err.Error()))
		return
	}
	// Another invocation may have published and released between the read and the take.
	now, nowVersion, err := u.reread(p)
	if err != nil {
		u.release(l)
		u.fail(i, p, cur, "the published token could not be read again: "+bound(err.Error()))
		return
	}
	if now == nil || tokens.Fingerprint(now.AccessToken) != ifToken {
		u.release(l)
		skip("rotated since the token was refused", now)
		return
	}
	u.addDue(due{i: i, p: p, cur: now, version: nowVersion, rotate: true, ifToken: ifToken, lease: &l},
		"its published token "+ifToken+" was refused")
}

// refusedStill says whether the published token of p is still the refused one,
// and if not, why the rotation is skipped.
func refusedStill(p registry.Provider, published store.Published, cur *tokens.Token, ifToken string) (string, bool) {
	switch {
	case published.Malformed[p.Parameter] != nil:
		return "the published token is unreadable, so it is not " + ifToken + "; the next refresh replaces it", false
	case cur == nil:
		return "no token is published, so it is not " + ifToken + "; the next refresh publishes one", false
	case tokens.Fingerprint(cur.AccessToken) != ifToken:
		return "rotated since the token was refused", false
	}
	return "", true
}

// awaitHolder waits for the invocation that holds p's lease to release it, at
// most LeaseWait and never past the run's work deadline, then answers skipped
// with the token published by then.
func (u *run) awaitHolder(i int, p registry.Provider, cur *tokens.Token, ifToken string, skip func(string, *tokens.Token)) {
	ctx, cancel := context.WithTimeout(u.work, u.r.leaseWait())
	defer cancel()
	rec, _ := u.r.Leases.Await(ctx, p.Name, leasePoll)
	if now, _, err := u.reread(p); err == nil && now != nil && tokens.Fingerprint(now.AccessToken) != ifToken {
		skip("rotated by another invocation", now)
		return
	}
	if rec != nil && rec.Held(u.r.now()) {
		skip(fmt.Sprintf("rotation in progress: another invocation (%s) has been rotating it since %s", rec.Holder, stamp(rec.TakenAt)), cur)
		return
	}
	skip("another invocation tried to rotate it just now and did not publish a new token; see its log", cur)
}

// reread reads p's published token again, alone.
func (u *run) reread(p registry.Provider) (*tokens.Token, int64, error) {
	published, err := u.r.Store.Tokens(u.work, []string{p.Parameter})
	if err != nil {
		return nil, 0, err
	}
	if err := published.Malformed[p.Parameter]; err != nil {
		return nil, 0, err
	}
	cur, version := tokenOf(published, p)
	return cur, version, nil
}

func tokenOf(published store.Published, p registry.Provider) (*tokens.Token, int64) {
	t, ok := published.Tokens[p.Parameter]
	if !ok {
		return nil, published.Versions[p.Parameter]
	}
	return &t, published.Versions[p.Parameter]
}

// release gives a lease back once its rotation is over, published or failed. A
// release that fails leaves the lease to go stale at its holder's deadline.
func (u *run) release(l lease.Lease) {
	if err := u.r.Leases.Release(u.publish, l); err != nil && u.r.Log != nil {
		u.r.Log.WarnContext(u.publish, "rotation lease not released; it goes stale at the invocation's deadline",
			"provider", l.Record.Provider, "until", stamp(l.Record.Until), "error", bound(err.Error()))
	}
}

func (u *run) holder() string {
	if u.holderID == "" {
		u.holderID = holderID(u.work)
	}
	return u.holderID
}

// addDue adds a due provider.
func (u *run) addDue(d due, reason string) {
	u.due = append(u.due, d)
	u.reasons = append(u.reasons, reason)
}

// fail gives provider p, outcome i, a failed outcome.
func (u *run) fail(i int, p registry.Provider, cur *tokens.Token, reason string) {
	u.outcomes[i] = Outcome{Provider: p.Name, Status: StatusFailed, Error: reason}
	u.r.report(u.work, u.outcomes[i], cur, 0)
}

func (r *Refresher) leaseWait() time.Duration {
	if r.LeaseWait > 0 {
		return r.LeaseWait
	}
	return DefaultLeaseWait
}
