package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// DefaultMaxConcurrency bounds how many providers are refreshed at once.
const DefaultMaxConcurrency = 8

// SecretSource supplies client credentials; *secrets.Source is one.
type SecretSource interface {
	Current(ctx context.Context, ids []string) (map[string]secrets.Secret, map[string]error)
	Fresh(ctx context.Context, id string) (secrets.Secret, error)
	Previous(ctx context.Context, id string) (secrets.Secret, error)
	Cached(id string) (secrets.Secret, bool)
	Invalidate(id string)
}

// TokenStore reads and publishes tokens; *store.Store is one.
type TokenStore interface {
	Current(ctx context.Context) (store.Published, error)
	Publish(ctx context.Context, parameter string, t tokens.Token) error
}

// TokenClient obtains tokens from token endpoints; *oauth.Client is one.
type TokenClient interface {
	Token(ctx context.Context, e oauth.Endpoint, cred oauth.Credentials) (*tokens.Token, error)
}

// Refresher keeps every provider's published token fresh. Set Providers, Secrets,
// Store and Client; the other fields have usable zero values.
type Refresher struct {
	Providers *registry.Registry
	Secrets   SecretSource
	Store     TokenStore
	Client    TokenClient
	Policy    Policy
	// MaxConcurrency bounds concurrent refreshes; DefaultMaxConcurrency when zero.
	MaxConcurrency int
	// Log receives one line per provider outcome; nothing when nil.
	Log *slog.Logger
	// Metrics receives the run's figures; nothing when nil.
	Metrics *Metrics
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrFailed is wrapped by Run's error when any provider failed.
var ErrFailed = errors.New("token refresh failed")

// Run carries out req: it plans (decides which providers are due) and then
// refreshes the due ones, publishing the new tokens, and reports on every provider
// it considered. Every provider is tried; the error, wrapping ErrFailed, comes after
// all of them when any failed. A request that names unknown providers changes
// nothing and fails at once.
func (r *Refresher) Run(ctx context.Context, req Request) (Result, error) {
	pl, err := r.plan(ctx, req)
	if err != nil {
		return Result{Results: []Outcome{}}, err
	}
	r.refreshDue(ctx, pl)
	res := Result{Results: pl.outcomes}
	return res, failures(pl.outcomes)
}

// plan is a run's decision: an outcome for every provider considered, final for
// those that are not due, and the due ones still to refresh.
type plan struct {
	outcomes []Outcome
	due      []job
}

// job is one due provider: its place in the outcomes and its published token.
type job struct {
	i   int
	p   registry.Provider
	cur *tokens.Token // nil when none is published
}

// plan resolves the request's providers, reads the published tokens and decides
// which are due. The providers that are not due get their final outcome here.
func (r *Refresher) plan(ctx context.Context, req Request) (plan, error) {
	targets, err := r.targets(req)
	if err != nil {
		return plan{}, err
	}
	if req.Action == ActionRotate {
		// A rotation is often asked for because the credentials changed: read them anew.
		for _, p := range targets {
			r.Secrets.Invalidate(p.SecretID)
		}
	}
	pl := plan{outcomes: make([]Outcome, len(targets))}
	if len(targets) == 0 {
		return pl, nil
	}
	published, err := r.Store.Current(ctx)
	if err != nil {
		// Without the current tokens nothing can be decided safely: a refresh could
		// replace a newer token. Fail the run; the next one tries again.
		return plan{}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	now := r.now()
	for i, p := range targets {
		pl.outcomes[i] = Outcome{Provider: p.Name}
		var cur *tokens.Token
		if t, ok := published.Tokens[p.Parameter]; ok {
			cur = &t
		}
		d := r.decide(now, p, cur, req)
		if merr, bad := published.Malformed[p.Parameter]; bad {
			d = Decision{Due: true, Reason: merr.Error()}
		}
		if d.Due {
			pl.due = append(pl.due, job{i: i, p: p, cur: cur})
			continue
		}
		pl.outcomes[i].Status = StatusSkipped
		pl.outcomes[i].Reason = d.Reason
		pl.outcomes[i].ExpiresAt = stamp(cur.ExpiresAt)
		r.Metrics.observe(p.Name, StatusSkipped, 0, cur.ExpiresAt)
		r.logOutcome(ctx, pl.outcomes[i], cur.AccessToken, 0)
	}
	return pl, nil
}

// refreshDue reads the due providers' secrets in batches and refreshes them, at
// most MaxConcurrency at once, filling in their outcomes. One provider's failure
// never stops the others.
func (r *Refresher) refreshDue(ctx context.Context, pl plan) {
	ids := make([]string, 0, len(pl.due))
	for _, j := range pl.due {
		ids = append(ids, j.p.SecretID)
	}
	creds, credErrs := r.Secrets.Current(ctx, ids)

	var g errgroup.Group
	g.SetLimit(max(1, orDefault(r.MaxConcurrency, DefaultMaxConcurrency)))
	for _, j := range pl.due {
		g.Go(func() error {
			start := time.Now()
			o, tok := r.refresh(ctx, j.p, j.cur, creds[j.p.SecretID], credErrs[j.p.SecretID])
			elapsed := time.Since(start)
			pl.outcomes[j.i] = o // each goroutine owns one element; g.Wait publishes them
			expiresAt := tok.ExpiresAt
			if o.Status == StatusFailed && j.cur != nil {
				expiresAt = j.cur.ExpiresAt // the token consumers still read
			}
			r.Metrics.observe(j.p.Name, o.Status, elapsed, expiresAt)
			r.logOutcome(ctx, o, tok.AccessToken, elapsed)
			return nil
		})
	}
	_ = g.Wait() // no goroutine returns an error
}

// maxNamedFailures bounds how many failures the invocation's error spells out: it
// ends up in Lambda's error payload and on-failure records; the result and the logs
// have every one.
const maxNamedFailures = 10

// failures summarises the failed outcomes as one error wrapping ErrFailed, or nil.
func failures(outcomes []Outcome) error {
	var named []string
	n := 0
	for _, o := range outcomes {
		if o.Status != StatusFailed {
			continue
		}
		n++
		if len(named) < maxNamedFailures {
			named = append(named, fmt.Sprintf("%s (%s)", o.Provider, o.Error))
		}
	}
	if n == 0 {
		return nil
	}
	if n > len(named) {
		named = append(named, fmt.Sprintf("and %d more", n-len(named)))
	}
	return fmt.Errorf("%w: %d of %d providers: %s", ErrFailed, n, len(outcomes), strings.Join(named, "; "))
}

// targets resolves the providers a request is about.
func (r *Refresher) targets(req Request) ([]registry.Provider, error) {
	if req.Action == ActionRefresh || (len(req.Providers) == 1 && req.Providers[0] == "*") {
		return r.Providers.Providers(), nil
	}
	var out []registry.Provider
	var unknown []string
	seen := map[string]bool{}
	for _, name := range req.Providers {
		if seen[name] {
			continue
		}
		seen[name] = true
		p, ok := r.Providers.Lookup(name)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		out = append(out, p)
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("%w: %s", ErrUnknownProvider, strings.Join(unknown, ", "))
	}
	return out, nil
}

// decide applies the policy, a rotation request, and a known change of the secret.
func (r *Refresher) decide(now time.Time, p registry.Provider, cur *tokens.Token, req Request) Decision {
	if req.Action == ActionRotate {
		return Decision{Due: true, Reason: "rotation requested"}
	}
	if cur != nil && cur.SecretVersion != "" {
		// Only a secret already in the cache is compared: reading secrets just to
		// compare would cost Secrets Manager calls on every idle run. Change events
		// cover the rest.
		if sec, ok := r.Secrets.Cached(p.SecretID); ok && sec.VersionID != "" && sec.VersionID != cur.SecretVersion {
			return Decision{Due: true, Reason: "client secret changed"}
		}
	}
	return r.Policy.Decide(now, p, cur)
}

// refresh obtains and publishes one provider's token. It returns the outcome and
// the new token (zero when none was published).
func (r *Refresher) refresh(ctx context.Context, p registry.Provider, cur *tokens.Token, sec secrets.Secret, secErr error) (Outcome, tokens.Token) {
	o := Outcome{Provider: p.Name}
	fail := func(err error) (Outcome, tokens.Token) {
		o.Status = StatusFailed
		o.Error = err.Error()
		return o, tokens.Token{}
	}
	if secErr != nil {
		return fail(secErr)
	}
	tok, sec, note, err := r.obtain(ctx, p, sec)
	if err != nil {
		return fail(err)
	}
	now := r.now()
	next := *tok
	next.Provider, next.SecretVersion = p.Name, sec.VersionID
	if !next.Valid(now) {
		return fail(fmt.Errorf("%w: the new token expired at %s; kept the published one", oauth.ErrInvalidToken, stamp(next.ExpiresAt)))
	}
	if cur != nil && cur.Valid(now) && !next.ExpiresAt.After(cur.ExpiresAt) {
		return fail(fmt.Errorf("%w: the new token expires at %s, no later than the published one (%s); kept the published one",
			oauth.ErrInvalidToken, stamp(next.ExpiresAt), stamp(cur.ExpiresAt)))
	}
	if err := r.Store.Publish(ctx, p.Parameter, next); err != nil {
		return fail(err)
	}
	o.Status = StatusRefreshed
	o.ExpiresAt = stamp(next.ExpiresAt)
	o.Note = note
	return o, next
}

// obtain asks the token endpoint with sec. When the endpoint rejects the
// credentials it reads the secret again (the cached copy may predate a rotation)
// and, when that is no different, tries the AWSPREVIOUS version once: a secret
// rotated in Secrets Manager before the provider accepts the new one must not
// cause an outage.
func (r *Refresher) obtain(ctx context.Context, p registry.Provider, sec secrets.Secret) (*tokens.Token, secrets.Secret, string, error) {
	tok, err := r.Client.Token(ctx, p.Endpoint, credentials(sec))
	if err == nil || !rejected(err) {
		return tok, sec, "", err
	}
	fresh, ferr := r.Secrets.Fresh(ctx, p.SecretID)
	if ferr == nil && fresh.VersionID != sec.VersionID {
		tok, err2 := r.Client.Token(ctx, p.Endpoint, credentials(fresh))
		if err2 == nil || !rejected(err2) {
			return tok, fresh, "", err2
		}
		sec, err = fresh, err2
	}
	prev, perr := r.Secrets.Previous(ctx, p.SecretID)
	if perr != nil || prev.VersionID == sec.VersionID {
		return nil, sec, "", err
	}
	tok, perr = r.Client.Token(ctx, p.Endpoint, credentials(prev))
	if perr != nil {
		return nil, sec, "", fmt.Errorf("%w (the previous secret version was refused too: %v)", err, perr)
	}
	return tok, prev, "the current client secret was refused; used the previous version (AWSPREVIOUS): update the secret or the provider", nil
}

func credentials(s secrets.Secret) oauth.Credentials {
	return oauth.Credentials{ClientID: s.ClientID, ClientSecret: s.ClientSecret}
}

func rejected(err error) bool {
	var e *oauth.Error
	return errors.As(err, &e) && e.CredentialsRejected()
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// logOutcome writes one line per provider: never the token, only its fingerprint.
func (r *Refresher) logOutcome(ctx context.Context, o Outcome, accessToken string, elapsed time.Duration) {
	if r.Log == nil {
		return
	}
	attrs := []any{"provider", o.Provider, "status", o.Status}
	if o.ExpiresAt != "" {
		attrs = append(attrs, "expires_at", o.ExpiresAt)
	}
	if fp := tokens.Fingerprint(accessToken); fp != "" {
		attrs = append(attrs, "token_fingerprint", fp)
	}
	if elapsed > 0 {
		attrs = append(attrs, "duration_ms", elapsed.Milliseconds())
	}
	switch {
	case o.Error != "":
		r.Log.ErrorContext(ctx, "token refresh failed", append(attrs, "error", o.Error)...)
	case o.Note != "":
		r.Log.WarnContext(ctx, "token refreshed", append(attrs, "note", o.Note)...)
	case o.Status == StatusSkipped:
		r.Log.InfoContext(ctx, "token not due", append(attrs, "reason", o.Reason)...)
	default:
		r.Log.InfoContext(ctx, "token refreshed", attrs...)
	}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
