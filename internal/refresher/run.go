package refresher

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/lease"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// run is one invocation: its deadlines, whether it is a dry run, an outcome for
// every provider it considers, the due providers still to refresh, and the tokens
// it read. A scheduled or manual run plans (plan) and then refreshes the due
// providers (refreshDue) or, as a planner, sends them to the workers (enqueue); a
// worker's run is batch. Both end by recording what they learnt.
type run struct {
	r *Refresher
	// work (token requests, reads) ends Reserve before the caller's deadline,
	// publish (writes of tokens already obtained) half a Reserve before it.
	work, publish context.Context
	cancel        func()
	dryRun        bool
	// worker says this is a worker's run (see batch).
	worker bool
	// holderID names the run in the rotation leases it takes (see holder).
	holderID string

	outcomes []Outcome
	due      []due
	// reasons says why each due provider is due, in the order of due.
	reasons []string
	// published holds the tokens read, by parameter, and the tokens the run
	// published once it is done; nil when the tokens could not be read.
	published map[string]tokens.Token
	// started is when the run began to read the tokens.
	started time.Time
	// rotations are the rotations still waiting, from the run record (nil when
	// none or not read); request is this run's own rotation, when a run that
	// cannot finish it must remember it (see pending.go).
	rotations  []state.Rotation
	request    *state.Rotation
	recordRead bool
	// unreached marks, by outcome, the rotated providers the run could not reach in
	// time and whose outcome waits for the run record (see settle).
	unreached []bool
	mu        sync.Mutex // guards published while due providers are refreshed
}

// due is one due provider: its place in the outcomes, its published token, the
// version of the parameter that was read, and whether its new token replaces the
// published one whatever that claims (a rotation).
type due struct {
	i       int
	p       registry.Provider
	cur     *tokens.Token // nil when none is published
	version int64
	rotate  bool
	// ifToken, for a conditional rotation, is the refused token's fingerprint, and
	// lease the provider's rotation lease when this run holds it.
	ifToken string
	lease   *lease.Lease
}

// start begins a run under ctx's deadline.
func (r *Refresher) start(ctx context.Context, dryRun bool) *run {
	u := &run{r: r, dryRun: dryRun, work: ctx, publish: ctx, cancel: func() {}}
	end, ok := ctx.Deadline()
	if !ok {
		return u
	}
	reserve := r.Reserve
	if reserve <= 0 {
		reserve = DefaultReserve
	}
	work, cancelWork := context.WithDeadline(ctx, end.Add(-reserve))
	publish, cancelPublish := context.WithDeadline(ctx, end.Add(-reserve/2))
	u.work, u.publish, u.cancel = work, publish, func() { cancelWork(); cancelPublish() }
	return u
}

// plan reads the targets' published tokens and decides which are due. The
// providers that are not due get their final outcome here; when the published
// tokens cannot be read, every provider fails, since nothing can be decided
// safely (a refresh could replace a newer token).
func (u *run) plan(targets []registry.Provider, rotate bool, ifToken string) {
	r := u.r
	if rotate && !u.dryRun {
		// A rotation is often asked for because the credentials changed: read them anew.
		for _, p := range targets {
			r.Secrets.Invalidate(p.SecretID)
		}
	}
	u.outcomes, u.started = make([]Outcome, len(targets)), r.now()
	if len(targets) == 0 {
		return
	}
	published, err := u.read(targets)
	if err != nil {
		u.unreadable(targets, err)
		return
	}
	u.published = published.Tokens
	now := r.now()
	// A conditional rotation that a planner sends to the workers takes no lease:
	// the worker does.
	take := !u.queues(ActionRotate, len(targets))
	for i, p := range targets {
		if ifToken != "" {
			u.sortConditional(i, p, published, ifToken, take)
			continue
		}
		u.sort(i, p, published, rotate, func(cur *tokens.Token) (bool, string) {
			d := u.decide(now, p, cur, rotate)
			return d.Due, d.Reason
		})
	}
}

// read reads what a plan decides on, for the targets' parameters: their metadata,
// fifty to a DescribeParameters call, which decrypts nothing, and the values of
// only those whose metadata cannot stand for the token (a description written by
// an older version, none, another KMS key), ten to a GetParameters call. A token
// known from its metadata is a stand-in (see described); it is decided on and
// reported, never published. When the metadata cannot be read, every token is
// read and decrypted, as before metadata was written.
//
// A run without fan-out reads every provider's, so that its run record covers them
// all; a planner, which serves registries too large for one invocation, reads its
// targets' only, several calls at once (docs/performance.md, scaling).
func (u *run) read(targets []registry.Provider) (store.Published, error) {
	if u.r.Queue == nil {
		targets = u.r.Providers.Providers()
	}
	return u.tokens(parameters(targets))
}

func (u *run) tokens(params []string) (store.Published, error) {
	r := u.r
	infos, err := r.Store.Metadata(u.work, params)
	if err != nil {
		if u.work.Err() != nil {
			return store.Published{}, err
		}
		r.logWarn(u.work, "token metadata unreadable; reading and decrypting every token", "error", bound(err.Error()))
		return r.Store.Tokens(u.work, params)
	}
	out := store.Published{Tokens: map[string]tokens.Token{}, Malformed: map[string]error{}, Versions: map[string]int64{}}
	var values []string
	for _, name := range params {
		info, ok := infos[name]
		switch {
		case !ok: // no parameter: no token
		case info.Complete:
			out.Tokens[name], out.Versions[name] = described(info), info.Version
		default:
			values = append(values, name)
		}
	}
	if len(values) == 0 {
		return out, nil
	}
	read, err := r.Store.Tokens(u.work, values)
	if err != nil {
		return store.Published{}, err
	}
	maps.Copy(out.Tokens, read.Tokens)
	maps.Copy(out.Malformed, read.Malformed)
	maps.Copy(out.Versions, read.Versions)
	return out, nil
}

// describedToken starts the access token of a stand-in: a token known from its
// parameter's metadata only, whose value was not read. It holds no part of the
// token, only its fingerprint, and cannot be mistaken for one: a control
// character is no RFC 6750 token character.
const describedToken = "\x00described:"

// described is the stand-in of the token info describes: what a decision needs,
// and the fingerprint it is reported by.
func described(info store.Info) tokens.Token {
	return tokens.Token{AccessToken: describedToken + info.Fingerprint, TokenType: "Bearer", Provider: info.Provider,
		IssuedAt: info.IssuedAt, ExpiresAt: info.ExpiresAt, SecretVersion: info.SecretVersion, RefusedSecretVersion: info.RefusedSecretVersion}
}

// fingerprintOf identifies tok in logs: the fingerprint of the token, or of the one a
// stand-in stands for.
func fingerprintOf(tok tokens.Token) string {
	if fp, ok := strings.CutPrefix(tok.AccessToken, describedToken); ok {
		return fp
	}
	return tokens.Fingerprint(tok.AccessToken)
}

func parameters(ps []registry.Provider) []string {
	params := make([]string, len(ps))
	for i, p := range ps {
		params[i] = p.Parameter
	}
	return params
}

// unreadable fails every provider of providers, whose outcome is at the same
// index: their published tokens could not be read. A provider without a name
// (a worker's message that names none to refresh) is left alone.
func (u *run) unreadable(providers []registry.Provider, err error) {
	reason := "the published tokens could not be read: " + bound(err.Error())
	if u.work.Err() != nil && !u.worker {
		reason = "the published tokens could not be read before the run's time ran out"
	}
	for i, p := range providers {
		if p.Name == "" {
			continue
		}
		u.outcomes[i] = Outcome{Provider: p.Name, Status: StatusFailed, Error: reason}
		u.r.report(u.work, u.outcomes[i], nil, 0)
	}
}

// sort decides provider p, outcome i, after its token in published: a malformed
// token is due; otherwise isDue says. A due provider joins u.due; one that is not
// gets its final outcome.
func (u *run) sort(i int, p registry.Provider, published store.Published, rotate bool, isDue func(cur *tokens.Token) (bool, string)) {
	var cur *tokens.Token
	if t, ok := published.Tokens[p.Parameter]; ok {
		cur = &t
	}
	ok, reason := false, ""
	if merr, bad := published.Malformed[p.Parameter]; bad {
		ok, reason = true, merr.Error()
	} else {
		ok, reason = isDue(cur)
	}
	if ok {
		if _, waits := u.waitsFor(p, cur); waits {
			rotate = true // a rotation requested earlier: done as a rotation
		}
		u.due = append(u.due, due{i: i, p: p, cur: cur, version: published.Versions[p.Parameter], rotate: rotate})
		u.reasons = append(u.reasons, reason)
		return
	}
	o := Outcome{Provider: p.Name, Status: StatusSkipped, Reason: reason}
	if cur != nil {
		o.ExpiresAt = stamp(cur.ExpiresAt)
		if cur.RefusedSecretVersion != "" && !u.worker {
			o.Note = degradedNote(cur)
		}
	}
	u.outcomes[i] = o
	u.r.report(u.work, o, cur, 0)
}

// refreshDue reads the secrets of the due providers in jobs in batches and
// refreshes them, at most MaxConcurrency at once, filling in their outcomes. One
// provider's failure never stops the others; a provider not started when the
// run's time is up fails with that reason.
func (u *run) refreshDue(jobs []due) {
	u.unreached = make([]bool, len(u.outcomes))
	if len(jobs) == 0 {
		return
	}
	r := u.r
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		ids = append(ids, j.p.SecretID)
	}
	creds, credErrs := r.Secrets.Current(u.work, ids, secrets.WithClock(r.Now))

	var g errgroup.Group
	g.SetLimit(max(1, cmp.Or(r.MaxConcurrency, DefaultMaxConcurrency)))
	for _, j := range jobs {
		g.Go(func() error {
			start := time.Now()
			var o Outcome
			var tok tokens.Token
			if u.work.Err() != nil {
				o = Outcome{Provider: j.p.Name, Status: StatusFailed, Error: "not attempted: the run's time ran out first"}
				u.unreached[j.i] = true
			} else {
				o, tok = u.refresh(j, creds[j.p.SecretID], credErrs[j.p.SecretID])
			}
			if j.lease != nil {
				u.release(*j.lease)
			}
			if j.ifToken != "" && o.Status == StatusRefreshed {
				o.TokenFingerprint = tokens.Fingerprint(tok.AccessToken)
			}
			u.outcomes[j.i] = o // each goroutine owns one element; g.Wait publishes them
			if o.Status == StatusRefreshed && !u.dryRun {
				u.mu.Lock()
				u.published[j.p.Parameter] = tok
				u.mu.Unlock()
			}
			if u.unreached[j.i] && u.remembers(j) {
				return nil // reported once the run record says whether it waits (settle)
			}
			u.unreached[j.i] = false
			shown := &tok
			if o.Status != StatusRefreshed {
				shown = j.cur // the token consumers still read
			}
			r.report(u.work, o, shown, time.Since(start))
			return nil
		})
	}
	_ = g.Wait() // no goroutine returns an error
}

// refresh obtains and publishes one provider's token. It returns the outcome and
// the token published (zero when none was).
func (u *run) refresh(j due, sec secrets.Secret, secErr error) (Outcome, tokens.Token) {
	r, p, cur := u.r, j.p, j.cur
	o := Outcome{Provider: p.Name}
	fail := func(err error) (Outcome, tokens.Token) {
		o.Status = StatusFailed
		o.Error = bound(err.Error())
		return o, tokens.Token{}
	}
	if secErr != nil {
		if u.work.Err() != nil {
			return fail(errors.New("the client credentials were not read before the run's time ran out"))
		}
		return fail(secErr)
	}
	work, publish := u.work, u.publish
	if r.Writes != nil && !u.dryRun {
		// The write's turn first, then the token: a token obtained is written at once.
		carry, err := r.Writes.Reserve(u.work)
		if err != nil {
			u.unreached[j.i] = true // refresh runs on j's goroutine, which owns the element
			return fail(fmt.Errorf("not asked for a token: %w", err))
		}
		work, publish = carry(u.work), carry(u.publish)
	}
	got, err := u.obtain(work, p, sec)
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
	var cert *Certificate
	if p.AuthMethod.MutualTLS() {
		var warn string
		if cert, warn = certificateCheck(got.used.Certificate, now); warn != "" {
			notes = append(notes, warn)
			o.warning = warn
		}
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
		if err := r.Client.Verify(u.work, *p.Verify, &next); err != nil {
			return fail(fmt.Errorf("%w; kept the published token", err))
		}
	}
	if u.dryRun {
		o.Status = StatusChecked
		o.ExpiresAt = stamp(next.ExpiresAt)
		o.Probe = probe(&next)
		o.Probe.AuthMethod, o.Probe.Certificate = string(p.AuthMethod), cert
		if got.endpoint != nil {
			o.Probe.TokenEndpoint = got.endpoint.String()
		}
		o.Probe.AuthMethodsSupported = got.methods
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
	published, err := r.Store.Publish(publish, store.Write{Parameter: p.Parameter, Token: next, After: j.version,
		RefreshAt: func(t tokens.Token) time.Time { return r.Policy.decide(t.IssuedAt, p, &t).RefreshAt }})
	if err != nil {
		if u.publish.Err() != nil {
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
	// endpoint is where the request went; methods what discovery listed (nil for
	// a provider configured by token_url).
	endpoint *url.URL
	methods  []string
}

// obtain asks the token endpoint with sec, under ctx (the run's work context, which
// carries the write reserved for the token). When the endpoint rejects the
// credentials it reads the secret again (the cached copy may predate a rotation)
// and, when that is no different, tries the AWSPREVIOUS version once: a secret
// rotated in Secrets Manager before the provider accepts the new one must not
// cause an outage.
func (u *run) obtain(ctx context.Context, p registry.Provider, sec secrets.Secret) (got obtained, _ error) {
	r := u.r
	var methods []string
	defer func() { got.endpoint, got.methods = p.TokenURL, methods }()
	// The signing key is the registry's, read at every run: a changed signing_key
	// signs the next request.
	var signer crypto.Signer
	if p.SigningKey != "" {
		if r.Keys == nil {
			return obtained{}, fmt.Errorf("signing_key kms:%s: this function has no KMS client", p.SigningKey)
		}
		var err error
		if signer, err = r.Keys.Signer(ctx, p.SigningKey); err != nil {
			return obtained{}, fmt.Errorf("signing_key kms:%s: %w", p.SigningKey, err)
		}
	}
	credentials := func(s secrets.Secret) oauth.Credentials {
		return oauth.Credentials{ClientID: s.ClientID, ClientSecret: s.ClientSecret, PrivateKey: s.PrivateKey,
			Certificate: s.Certificate, Signer: signer}
	}
	// A provider configured by issuer: the token endpoint is the (cached) metadata's.
	md, err := resolveEndpoint(ctx, r.Discovery, &p)
	if md != nil {
		methods = md.AuthMethods
	}
	if err != nil {
		return obtained{}, err
	}
	rediscovered := false
	token := func(c oauth.Credentials) (*tokens.Token, error) {
		tok, err := r.Client.Token(ctx, p.Endpoint, c, oauth.WithClock(r.Now))
		// Only an endpoint that seems to have moved makes a new read worth it, and
		// once per refresh: the document may be stale, a refusal would not change.
		if err != nil && p.Issuer != "" && !rediscovered && discovery.Moved(err) {
			rediscovered = true
			r.Discovery.Forget(p.Issuer)
			if _, derr := resolveEndpoint(ctx, r.Discovery, &p); derr != nil {
				return nil, fmt.Errorf("%w (discovered again: %v)", err, derr)
			}
			tok, err = r.Client.Token(ctx, p.Endpoint, c, oauth.WithClock(r.Now))
		}
		return tok, err
	}
	tok, err := token(credentials(sec))
	if err == nil || !rejected(err) {
		return obtained{tok: tok, used: sec}, err
	}
	fresh, ferr := r.Secrets.Fresh(ctx, p.SecretID, secrets.WithClock(r.Now))
	if ferr == nil && fresh.VersionID != sec.VersionID {
		tok, err2 := token(credentials(fresh))
		if err2 == nil || !rejected(err2) {
			return obtained{tok: tok, used: fresh}, err2
		}
		sec, err = fresh, err2
	}
	prev, perr := r.Secrets.Previous(ctx, p.SecretID)
	if perr != nil || prev.VersionID == sec.VersionID {
		return obtained{}, err
	}
	tok, perr = token(credentials(prev))
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

func rejected(err error) bool {
	var e *oauth.Error
	return errors.As(err, &e) && e.CredentialsRejected()
}
