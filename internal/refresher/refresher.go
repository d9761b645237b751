package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Defaults for a Refresher's zero fields.
const (
	// DefaultMaxConcurrency bounds how many providers are refreshed at once.
	DefaultMaxConcurrency = 8
	// DefaultReserve is how long before the invocation's deadline work stops, so
	// that the result, the log lines and the metrics are always written in time.
	DefaultReserve = 5 * time.Second
	// DefaultReconcile bounds how long idle runs may rely on the run record: at
	// least this often a scheduled run reads every published token.
	DefaultReconcile = time.Hour
)

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
	// Tokens reads the named parameters only; a worker's read.
	Tokens(ctx context.Context, params []string) (store.Published, error)
	// Publish writes a token and returns the token published when it returns,
	// which an overlapping writer may have made a longer-lived one.
	Publish(ctx context.Context, w store.Write) (tokens.Token, error)
}

// StateStore keeps the providers' health and the run record; *state.Store is one.
type StateStore interface {
	Health(ctx context.Context, providers []string) (map[string]state.Health, error)
	PutHealth(ctx context.Context, h state.Health) error
	Run(ctx context.Context) (state.Run, int64, error)
	PutRun(ctx context.Context, r state.Run) error
}

// TokenClient obtains tokens from token endpoints and checks them against a
// partner's API; *oauth.Client is one.
type TokenClient interface {
	Token(ctx context.Context, e oauth.Endpoint, cred oauth.Credentials) (*tokens.Token, error)
	Verify(ctx context.Context, chk oauth.Check, tok *tokens.Token) error
}

// Refresher keeps every provider's published token fresh. Set Providers, Secrets,
// Store and Client; the other fields have usable zero values.
type Refresher struct {
	Providers *registry.Registry
	Secrets   SecretSource
	Store     TokenStore
	Client    TokenClient
	Policy    Policy
	// State keeps each provider's health and the run record that lets idle
	// scheduled runs end after one read; without it there is neither.
	State StateStore
	// Reconcile bounds how long idle runs rely on the run record before one reads
	// every token again; DefaultReconcile when zero.
	Reconcile time.Duration
	// Queue, when set, makes this the planner of a fanned-out deployment: a refresh,
	// and a rotation of more than InlineRotations providers, sends the due
	// providers to it as jobs for workers instead of refreshing them itself (see
	// fanout.go).
	Queue JobQueue
	// MaxConcurrency bounds concurrent refreshes; DefaultMaxConcurrency when zero.
	MaxConcurrency int
	// Reserve is how long before ctx's deadline Run stops starting work: no token
	// request, retry or secret read starts within it, a token already obtained may
	// still be published in its first half, and every provider still unfinished is
	// reported failed with its last reason. DefaultReserve when zero.
	Reserve time.Duration
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
// nothing and fails at once. A scheduled run that the run record shows to have
// nothing to do ends after reading it (see the package documentation).
//
// When ctx has a deadline, Run returns before it: work stops Reserve earlier (see
// Reserve).
func (r *Refresher) Run(ctx context.Context, req Request) (Result, error) {
	d := r.deadlines(ctx)
	defer d.cancel()
	if req.Action == ActionWork {
		return r.work(d, req), nil
	}
	if res, ok := r.idle(d.work, req); ok {
		return res, nil
	}
	pl, err := r.plan(d.work, req)
	if err != nil {
		return Result{Results: []Outcome{}}, err
	}
	if r.fansOut(req, pl) {
		r.enqueue(d.work, pl)
		res := Result{Results: pl.outcomes}
		if pl.published != nil {
			res.NextDue = r.record(d.publish, pl)
		}
		return res, failures(pl.outcomes)
	}
	r.refreshDue(d, req, pl)
	res := Result{Results: pl.outcomes}
	if pl.published != nil && !req.DryRun {
		res.NextDue = r.record(d.publish, pl)
	}
	return res, failures(pl.outcomes)
}

// deadlines are a run's contexts: work (token requests, reads) ends Reserve before
// the caller's deadline, publish (writes of tokens already obtained) half a Reserve
// before it.
type deadlines struct {
	work, publish context.Context
	cancel        func()
}

func (r *Refresher) deadlines(ctx context.Context) deadlines {
	end, ok := ctx.Deadline()
	if !ok {
		return deadlines{work: ctx, publish: ctx, cancel: func() {}}
	}
	reserve := r.Reserve
	if reserve <= 0 {
		reserve = DefaultReserve
	}
	work, cancelWork := context.WithDeadline(ctx, end.Add(-reserve))
	publish, cancelPublish := context.WithDeadline(ctx, end.Add(-reserve/2))
	return deadlines{work: work, publish: publish, cancel: func() { cancelWork(); cancelPublish() }}
}

// plan is a run's decision: an outcome for every provider considered, final for
// those that are not due, and the due ones still to refresh; and what it read.
type plan struct {
	outcomes []Outcome
	due      []job
	// published holds the tokens read, by parameter, and the tokens the run
	// published once it is done; nil when the tokens could not be read.
	published map[string]tokens.Token
	// started is when the tokens were read.
	started time.Time
	// reasons says why each due provider is due, in the order of due.
	reasons []string
	mu      sync.Mutex // guards published while due providers are refreshed
}

// job is one due provider: its place in the outcomes, its published token, the
// version of the parameter that was read, and whether its new token replaces the
// published one whatever that claims (a rotation).
type job struct {
	i       int
	p       registry.Provider
	cur     *tokens.Token // nil when none is published
	version int64
	rotate  bool
}

// plan resolves the request's providers, reads the published tokens and decides
// which are due. The providers that are not due get their final outcome here; when
// the published tokens cannot be read, every provider fails, since nothing can be
// decided safely (a refresh could replace a newer token).
func (r *Refresher) plan(ctx context.Context, req Request) (*plan, error) {
	targets, err := r.targets(req)
	if err != nil {
		return nil, err
	}
	if req.Action == ActionRotate && !req.DryRun {
		// A rotation is often asked for because the credentials changed: read them anew.
		for _, p := range targets {
			r.Secrets.Invalidate(p.SecretID)
		}
	}
	pl := &plan{outcomes: make([]Outcome, len(targets)), started: r.now()}
	if len(targets) == 0 {
		return pl, nil
	}
	published, err := r.read(ctx, targets)
	if err != nil {
		reason := "the published tokens could not be read: " + bound(err.Error())
		if ctx.Err() != nil {
			reason = "the published tokens could not be read before the run's time ran out"
		}
		for i, p := range targets {
			pl.outcomes[i] = Outcome{Provider: p.Name, Status: StatusFailed, Error: reason}
			r.report(ctx, pl.outcomes[i], nil, 0)
		}
		return pl, nil
	}
	pl.published = published.Tokens
	now := r.now()
	for i, p := range targets {
		var cur *tokens.Token
		if t, ok := published.Tokens[p.Parameter]; ok {
			cur = &t
		}
		d := r.decide(now, p, cur, req)
		if merr, bad := published.Malformed[p.Parameter]; bad {
			d = Decision{Due: true, Reason: merr.Error()}
		}
		if d.Due {
			pl.due = append(pl.due, job{i: i, p: p, cur: cur, version: published.Versions[p.Parameter], rotate: req.Action == ActionRotate})
			pl.reasons = append(pl.reasons, d.Reason)
			continue
		}
		pl.outcomes[i] = Outcome{Provider: p.Name, Status: StatusSkipped, Reason: d.Reason, ExpiresAt: stamp(cur.ExpiresAt)}
		if cur.RefusedSecretVersion != "" {
			pl.outcomes[i].Note = degradedNote(cur)
		}
		r.report(ctx, pl.outcomes[i], cur, 0)
	}
	return pl, nil
}

// read reads the published tokens a plan decides on: every token under the
// prefix, a page at a time; a planner (Queue set), which serves registries too
// large for one invocation, reads its targets by name instead, several calls at
// once, on GetParameters' quota (docs/performance.md, scaling).
func (r *Refresher) read(ctx context.Context, targets []registry.Provider) (store.Published, error) {
	if r.Queue == nil {
		return r.Store.Current(ctx)
	}
	params := make([]string, len(targets))
	for i, p := range targets {
		params[i] = p.Parameter
	}
	return r.Store.Tokens(ctx, params)
}

// refreshDue reads the due providers' secrets in batches and refreshes them, at
// most MaxConcurrency at once, filling in their outcomes. One provider's failure
// never stops the others; a provider not started when the run's time is up fails
// with that reason.
func (r *Refresher) refreshDue(d deadlines, req Request, pl *plan) {
	if len(pl.due) == 0 {
		return
	}
	ids := make([]string, 0, len(pl.due))
	for _, j := range pl.due {
		ids = append(ids, j.p.SecretID)
	}
	creds, credErrs := r.Secrets.Current(d.work, ids)

	var g errgroup.Group
	g.SetLimit(max(1, orDefault(r.MaxConcurrency, DefaultMaxConcurrency)))
	for _, j := range pl.due {
		g.Go(func() error {
			start := time.Now()
			var o Outcome
			var tok tokens.Token
			if d.work.Err() != nil {
				o = Outcome{Provider: j.p.Name, Status: StatusFailed, Error: "not attempted: the run's time ran out first"}
			} else {
				o, tok = r.refresh(d, req, j, creds[j.p.SecretID], credErrs[j.p.SecretID])
			}
			pl.outcomes[j.i] = o // each goroutine owns one element; g.Wait publishes them
			if o.Status == StatusRefreshed && !req.DryRun {
				pl.mu.Lock()
				pl.published[j.p.Parameter] = tok
				pl.mu.Unlock()
			}
			shown := &tok
			if o.Status != StatusRefreshed {
				shown = j.cur // the token consumers still read
			}
			r.report(d.work, o, shown, time.Since(start))
			return nil
		})
	}
	_ = g.Wait() // no goroutine returns an error
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
			unknown = append(unknown, fmt.Sprintf("%q", cut.String(name, maxName)))
			continue
		}
		out = append(out, p)
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("%w: %s", ErrUnknownProvider, list(unknown, maxNamed, ", "))
	}
	return out, nil
}

// decide applies the policy, a rotation request, a token that is not the
// provider's, and a known change of the secret.
func (r *Refresher) decide(now time.Time, p registry.Provider, cur *tokens.Token, req Request) Decision {
	if req.Action == ActionRotate {
		return Decision{Due: true, Reason: "rotation requested"}
	}
	if cur != nil && cur.Provider != p.Name {
		return Decision{Due: true, Reason: fmt.Sprintf("the published token is provider %q's", cut.String(cur.Provider, maxName))}
	}
	if cur != nil && cur.SecretVersion != "" {
		// Only a secret already in the cache is compared: reading secrets just to
		// compare would cost Secrets Manager calls on every idle run. Change events
		// cover the rest. A version the provider refused (the token was obtained with
		// AWSPREVIOUS) is no change: trying it again before the token is due would
		// only be refused again.
		if sec, ok := r.Secrets.Cached(p.SecretID); ok && sec.VersionID != "" &&
			sec.VersionID != cur.SecretVersion && sec.VersionID != cur.RefusedSecretVersion {
			return Decision{Due: true, Reason: "client secret changed"}
		}
	}
	return r.Policy.Decide(now, p, cur)
}

// refresh obtains and publishes one provider's token. It returns the outcome and
// the token published (zero when none was).
func (r *Refresher) refresh(d deadlines, req Request, j job, sec secrets.Secret, secErr error) (Outcome, tokens.Token) {
	p, cur := j.p, j.cur
	o := Outcome{Provider: p.Name}
	fail := func(err error) (Outcome, tokens.Token) {
		o.Status = StatusFailed
		o.Error = bound(err.Error())
		return o, tokens.Token{}
	}
	if secErr != nil {
		if d.work.Err() != nil {
			return fail(errors.New("the client credentials were not read before the run's time ran out"))
		}
		return fail(secErr)
	}
	got, err := r.obtain(d.work, p, sec)
	if err != nil {
		return fail(err)
	}
	now := r.now()
	next := *got.tok
	next.Provider, next.SecretVersion, next.RefusedSecretVersion = p.Name, got.used.VersionID, got.refused
	var notes []string
	if got.refused != "" {
		notes = append(notes, degradedNote(&next))
	}
	if limit := p.MaxLifetime; limit > 0 && next.ExpiresAt.Sub(next.IssuedAt) > limit {
		notes = append(notes, fmt.Sprintf("the endpoint stated a lifetime of %s, more than max_lifetime %s: published as %s",
			next.ExpiresAt.Sub(next.IssuedAt).Round(time.Second), limit, limit))
		next.ExpiresAt = next.IssuedAt.Add(limit)
	}
	if !next.Valid(now) {
		return fail(fmt.Errorf("%w: the new token expired at %s; kept the published one", oauth.ErrInvalidToken, stamp(next.ExpiresAt)))
	}
	if p.Verify != nil {
		if err := r.Client.Verify(d.work, *p.Verify, &next); err != nil {
			return fail(fmt.Errorf("%w; kept the published token", err))
		}
	}
	if req.DryRun {
		o.Status = StatusChecked
		o.ExpiresAt = stamp(next.ExpiresAt)
		o.Probe = probe(&next)
		o.Note = bound(joinNotes(notes))
		return o, tokens.Token{}
	}
	// A scheduled refresh never shortens the published token; a rotation publishes
	// the valid token it got whatever the old one claims, or a token claiming a far
	// expiry could never be replaced.
	if !j.rotate && cur != nil && cur.Provider == p.Name && cur.Valid(now) && !next.ExpiresAt.After(cur.ExpiresAt) {
		return fail(fmt.Errorf("%w: the new token expires at %s, no later than the published one (%s); kept the published one",
			oauth.ErrInvalidToken, stamp(next.ExpiresAt), stamp(cur.ExpiresAt)))
	}
	published, err := r.Store.Publish(d.publish, store.Write{Parameter: p.Parameter, Token: next, After: j.version,
		RefreshAt: func(t tokens.Token) time.Time { return r.Policy.Decide(t.IssuedAt, p, &t).RefreshAt }})
	if err != nil {
		if d.publish.Err() != nil {
			return fail(errors.New("the new token was not published before the run's time ran out; kept the published one"))
		}
		return fail(err)
	}
	if published.AccessToken != next.AccessToken {
		notes = append(notes, "an overlapping run published a token that expires later; kept it")
	}
	o.Status = StatusRefreshed
	o.ExpiresAt = stamp(published.ExpiresAt)
	o.Note = bound(joinNotes(notes))
	return o, published
}

// obtained is what obtain got: the token, the secret version it was obtained with,
// and, when that is AWSPREVIOUS, the current version the provider refused.
type obtained struct {
	tok     *tokens.Token
	used    secrets.Secret
	refused string
}

// obtain asks the token endpoint with sec. When the endpoint rejects the
// credentials it reads the secret again (the cached copy may predate a rotation)
// and, when that is no different, tries the AWSPREVIOUS version once: a secret
// rotated in Secrets Manager before the provider accepts the new one must not
// cause an outage.
func (r *Refresher) obtain(ctx context.Context, p registry.Provider, sec secrets.Secret) (obtained, error) {
	tok, err := r.Client.Token(ctx, p.Endpoint, credentials(sec))
	if err == nil || !rejected(err) {
		return obtained{tok: tok, used: sec}, err
	}
	fresh, ferr := r.Secrets.Fresh(ctx, p.SecretID)
	if ferr == nil && fresh.VersionID != sec.VersionID {
		tok, err2 := r.Client.Token(ctx, p.Endpoint, credentials(fresh))
		if err2 == nil || !rejected(err2) {
			return obtained{tok: tok, used: fresh}, err2
		}
		sec, err = fresh, err2
	}
	prev, perr := r.Secrets.Previous(ctx, p.SecretID)
	if perr != nil || prev.VersionID == sec.VersionID {
		return obtained{}, err
	}
	tok, perr = r.Client.Token(ctx, p.Endpoint, credentials(prev))
	if perr != nil {
		return obtained{}, fmt.Errorf("%w (the previous secret version was refused too: %v)", err, perr)
	}
	return obtained{tok: tok, used: prev, refused: sec.VersionID}, nil
}

// degradedNote says that t was obtained with the previous client secret.
func degradedNote(t *tokens.Token) string {
	return fmt.Sprintf("running on the previous client secret (AWSPREVIOUS) since %s: the current one was refused; update the secret or the provider",
		stamp(t.IssuedAt))
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

// report writes one provider's log line and metrics. tok is the token consumers read
// after the run, nil when there is none; it is logged by its fingerprint only.
func (r *Refresher) report(ctx context.Context, o Outcome, tok *tokens.Token, elapsed time.Duration) {
	var expiresAt time.Time
	var fingerprint string
	if tok != nil {
		expiresAt, fingerprint = tok.ExpiresAt, tokens.Fingerprint(tok.AccessToken)
	}
	degraded := tok != nil && tok.RefusedSecretVersion != "" && tok.Valid(r.now())
	r.Metrics.observe(o.Provider, o.Status, elapsed, expiresAt, degraded)
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
