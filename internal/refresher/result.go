package refresher

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Status is a provider's outcome in a run.
type Status string

// Statuses.
const (
	StatusRefreshed Status = "refreshed"
	StatusSkipped   Status = "skipped"
	StatusFailed    Status = "failed"
	// StatusChecked is a dry run's: a token was obtained (and verified, when the
	// provider says how) but not published.
	StatusChecked Status = "checked"
	// StatusQueued is a planner's: the provider was sent to the workers as a job
	// (see planner.go); the workers' runs say how it went.
	StatusQueued Status = "queued"
	// StatusPending is a rotation's provider that the run could not reach within
	// its write budget and deadline: the rotation is kept in the run record, and
	// later runs rotate it (see pending.go). It is no failure.
	StatusPending Status = "pending"
)

// Result is what an invocation returns: one outcome per provider considered, in
// registry order, unless there are too many for one response (see bounded). It
// never holds a secret or a token.
type Result struct {
	Results []Outcome `json:"results"`
	// NextDue is when the next token becomes due, RFC 3339 UTC, when the run knows
	// it: every provider has a valid token and none failed.
	NextDue string `json:"next_due,omitempty"`
	// Idle says the run read the run record only: nothing was due.
	Idle bool `json:"idle,omitempty"`
	// BatchItemFailures, a worker's, names the queue messages whose providers failed,
	// so that the event source mapping sends only those again.
	BatchItemFailures []events.SQSBatchItemFailure `json:"batchItemFailures,omitempty"`
	// Totals tallies every provider's outcome by status, and Omitted says how many
	// outcomes Results leaves out, when the whole list would not fit in a response
	// (see bounded); both are absent otherwise.
	Totals  map[Status]int `json:"counts,omitempty"`
	Omitted int            `json:"omitted,omitempty"`
	// Note says what was left out, when anything was.
	Note string `json:"note,omitempty"`
}

// maxResultBytes bounds the JSON of a result. Lambda returns at most 6 MB
// (6,291,456 bytes) from a synchronous invoke, and a result lists every provider
// considered (about 160 bytes each: 6.3 MB at 40,000): past this bound the
// outcomes that matter, those not skipped, are kept first, and a quarter of the
// quota stays free for the rest of the answer.
const maxResultBytes = 4_500_000

// bounded returns res within limit bytes of JSON: unchanged when it fits; else
// with Totals of every outcome, the outcomes that are not skipped in registry
// order as far as they fit, and Omitted and Note saying what was left out.
func (res Result) bounded(limit int) Result {
	size := func(v any) int {
		b, _ := json.Marshal(v) // a Result always marshals
		return len(b)
	}
	total := size(res)
	if total <= limit {
		return res
	}
	out := res
	out.Totals = res.Counts()
	out.Results = []Outcome{}
	out.Note = "too many outcomes for one response: counts has every provider; results lists those not skipped, as far as they fit; the metrics and the log have the rest"
	budget := limit - size(out) - len(`,"omitted":9999999`)
	for _, o := range res.Results {
		if o.Status == StatusSkipped {
			continue
		}
		n := size(o) + 1 // and its comma
		if n > budget {
			break
		}
		budget -= n
		out.Results = append(out.Results, o)
	}
	out.Omitted = len(res.Results) - len(out.Results)
	return out
}

// Outcome is one provider's part of a Result.
type Outcome struct {
	Provider string `json:"provider"`
	Status   Status `json:"status"`
	// ExpiresAt is the published token's expiry, RFC 3339 UTC, when there is one.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Reason says why a provider was skipped.
	Reason string `json:"reason,omitempty"`
	// Error says why a provider failed.
	Error string `json:"error,omitempty"`
	// TokenFingerprint, for a conditional rotation, is the fingerprint of the
	// token published when the provider's outcome was decided: the new one, or
	// the newer one another invocation published.
	TokenFingerprint string `json:"token_fingerprint,omitempty"`
	// Note flags something an operator should act on although the refresh worked.
	Note string `json:"note,omitempty"`
	// Probe describes the token a dry run obtained; never the token itself.
	Probe *Probe `json:"probe,omitempty"`
	// warning, when a token was published, makes the provider's health degraded
	// for this reason (a client certificate close to its expiry).
	warning string
}

// Probe is what a dry run reports of a token it obtained and did not publish.
type Probe struct {
	TokenType string `json:"token_type"`
	// Lifetime is the lifetime in seconds, as it would be published.
	Lifetime    int64  `json:"lifetime_seconds"`
	Scope       string `json:"scope,omitempty"`
	Fingerprint string `json:"fingerprint"`
	// JWT holds the claims that matter when the token is a JWT, read not verified.
	JWT *JWT `json:"jwt,omitempty"`
	// AuthMethod is how the client authenticated; TokenEndpoint where it asked.
	AuthMethod    string `json:"auth_method"`
	TokenEndpoint string `json:"token_endpoint"`
	// AuthMethodsSupported is what discovery found the server lists, for a
	// provider configured by issuer.
	AuthMethodsSupported []string `json:"auth_methods_supported,omitempty"`
	// Certificate is the mutual TLS client certificate presented.
	Certificate *Certificate `json:"certificate,omitempty"`
}

// JWT are the claims of a JWT access token an operator checks.
type JWT struct {
	Exp      string   `json:"exp,omitempty"`
	Audience []string `json:"aud,omitempty"`
	Issuer   string   `json:"iss,omitempty"`
}

func probe(t *tokens.Token) *Probe {
	p := &Probe{TokenType: t.TokenType, Lifetime: int64(t.ExpiresAt.Sub(t.IssuedAt).Seconds()), Scope: t.Scope,
		Fingerprint: tokens.Fingerprint(t.AccessToken)}
	if c, ok := oauth.JWTClaims(t.AccessToken); ok {
		p.JWT = &JWT{Audience: c.Audience, Issuer: cut.String(c.Issuer, maxName)}
		if !c.Exp.IsZero() {
			p.JWT.Exp = stamp(c.Exp)
		}
	}
	return p
}

// Counts tallies the outcomes by status.
func (r Result) Counts() map[Status]int {
	c := map[Status]int{}
	for _, o := range r.Results {
		c[o.Status]++
	}
	return c
}
