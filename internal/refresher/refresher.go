package refresher

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
	Current(ctx context.Context, ids []string, opts ...secrets.ReadOption) (map[string]secrets.Secret, map[string]error)
	Fresh(ctx context.Context, id string, opts ...secrets.ReadOption) (secrets.Secret, error)
	Previous(ctx context.Context, id string) (secrets.Secret, error)
	Cached(id string) (secrets.Secret, bool)
	Invalidate(id string)
}

// TokenStore reads and publishes tokens; *store.Store is one.
type TokenStore interface {
	// Tokens reads and decrypts the named parameters only.
	Tokens(ctx context.Context, params []string) (store.Published, error)
	// Metadata reads the named parameters' metadata, decrypting nothing: what a
	// decision needs of a token, when the description is Complete.
	Metadata(ctx context.Context, params []string) (map[string]store.Info, error)
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
	Token(ctx context.Context, e oauth.Endpoint, cred oauth.Credentials, opts ...oauth.TokenOption) (*tokens.Token, error)
	Verify(ctx context.Context, chk oauth.Check, tok *tokens.Token) error
}

// KeySigners makes signers of keys held outside the secret, the registry's
// signing_key; kmssign.Keys is one. A signer is bound to ctx.
type KeySigners interface {
	Signer(ctx context.Context, keyID string) (crypto.Signer, error)
}

// WriteBudget paces the token writes to the deployment's write budget;
// ssmput.Budget is one. Reserve waits under ctx's deadline until one write may be
// made and returns carry: the write made under carry(c) spends that reservation
// instead of waiting again. Its error, when the deadline comes first, says "write
// budget". Rate is the writes a second it allows this invocation.
type WriteBudget interface {
	Reserve(ctx context.Context) (carry func(context.Context) context.Context, err error)
	Rate() float64
}

// Refresher keeps every provider's published token fresh. Set Providers, Secrets,
// Store and Client; the other fields have usable zero values.
type Refresher struct {
	Providers *registry.Registry
	Secrets   SecretSource
	Store     TokenStore
	Client    TokenClient
	// Keys signs the assertions of providers with a signing_key; without it such a
	// provider fails.
	Keys KeySigners
	// Discovery finds the token endpoint of providers configured by issuer; without
	// it such a provider fails.
	Discovery Discoverer
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
	// planner.go).
	Queue JobQueue
	// Shares, for a planner, is how many invocations share the write budget: the
	// workers and the planner. A planner with a write budget refreshes its own
	// share of the due providers rather than sending them all (see keep).
	Shares int
	// Leases coordinate conditional rotations (Request.IfToken) across
	// invocations, and space them by their interval; without it a conditional
	// rotation fails (see conditional.go).
	Leases LeaseStore
	// LeaseWait bounds how long a conditional rotation that finds the lease held
	// waits for the holder's new token; DefaultLeaseWait when zero.
	LeaseWait time.Duration
	// Writes, when set, is the write budget the token writes are paced to: a token
	// is requested only once its write's turn has come, so that it is published as
	// soon as it is obtained, not after waiting for the budget while its life runs.
	// A provider whose turn would come after the run's time is up is not asked, and
	// fails with "write budget" as its reason.
	Writes WriteBudget
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
	// Now is the clock of every run, handed to Secrets and Client on each call
	// (see the package documentation); time.Now when nil.
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
	u := r.start(ctx, req.DryRun)
	defer u.cancel()
	if req.Action == actionWork {
		return u.batch(req.Jobs), nil
	}
	if res, ok := u.idle(u.work, req); ok {
		return res, nil
	}
	targets, err := r.targets(req)
	if err != nil {
		return Result{Results: []Outcome{}}, err
	}
	if req.IfToken == "" {
		// Rotations asked earlier that still wait are done by any run that reads
		// the tokens; a consumer's conditional rotation reads the record only if it
		// writes it.
		u.loadRotations(u.work)
	}
	u.plan(targets, req.Action == ActionRotate, req.IfToken)
	if req.Action == ActionRotate && req.IfToken == "" {
		// Kept in the run record for the providers it does not reach (pending.go).
		u.request = &state.Rotation{At: u.started, All: len(req.Providers) == 1 && req.Providers[0] == "*"}
		if !u.request.All {
			u.request.Providers = providerNames(targets)
		}
	}
	if u.fansOut(req.Action) {
		sent := len(u.due) - u.keep()
		u.enqueue(u.due[:sent], u.reasons[:sent])
		u.refreshDue(u.due[sent:])
	} else {
		u.refreshDue(u.due)
	}
	res := Result{Results: u.outcomes}
	// A conditional rotation that rotated nothing changed nothing to record, and
	// its tokens, read before another invocation's rotation, may be older than
	// that invocation's record: a fleet's refusals cost no writes.
	if u.published != nil && !u.dryRun && (req.IfToken == "" || len(u.due) > 0) {
		res.NextDue = u.record()
	}
	return res, failures(u.outcomes)
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
func (r *Refresher) decide(now time.Time, p registry.Provider, cur *tokens.Token, rotate bool) decision {
	if rotate {
		return decision{Due: true, Reason: "rotation requested"}
	}
	if cur != nil && cur.Provider != p.Name {
		return decision{Due: true, Reason: fmt.Sprintf("the published token is provider %q's", cut.String(cur.Provider, maxName))}
	}
	if cur != nil && cur.SecretVersion != "" {
		// Only a secret already in the cache is compared: reading secrets just to
		// compare would cost Secrets Manager calls on every idle run. Change events
		// cover the rest. A version the provider refused (the token was obtained with
		// AWSPREVIOUS) is no change: trying it again before the token is due would
		// only be refused again.
		if sec, ok := r.Secrets.Cached(p.SecretID); ok && sec.VersionID != "" &&
			sec.VersionID != cur.SecretVersion && sec.VersionID != cur.RefusedSecretVersion {
			return decision{Due: true, Reason: "client secret changed"}
		}
	}
	return r.Policy.decide(now, p, cur)
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
