// Package registry holds the providers the refresher keeps tokens for: for each
// partner API, its token endpoint (an oauth.Endpoint, the dialect of the grant it
// speaks), where its client credentials live, where its token is published and
// when it is refreshed.
//
// The registry is plain configuration, loaded from YAML by Load; there is no code
// per provider. It knows YAML and the refresher's settings; the token endpoint
// client knows neither.
package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/secretid"
)

// DefaultParameterPrefix is where tokens are published when Options.ParameterPrefix
// is empty, and the default of the function's TOKEN_PARAMETER_PREFIX.
const DefaultParameterPrefix = "/token-refresher/tokens"

// defaultMaxLifetime is a provider's max_lifetime when it sets none: a year and a
// month, above the longest lifetime the seed providers document (one year), far
// below what a unit mistake in expires_in or a JWT exp in year 9999 claims.
const defaultMaxLifetime = 395 * 24 * time.Hour

// Provider is one partner API: its token endpoint and what the refresher needs
// besides it.
type Provider struct {
	// Name is unique, matches [a-z0-9_-]+ and names the provider in results, logs and metrics.
	Name string
	// Endpoint is the token endpoint and its dialect. Load sets AuthMethod,
	// BasicEncoding and RequestFormat explicitly, so a Provider reads as configured.
	oauth.Endpoint
	// Issuer, when set instead of token_url, is the authorization server whose
	// metadata (RFC 8414, else OpenID Connect Discovery) names the token endpoint;
	// Endpoint.TokenURL is then nil until the refresher resolves it.
	Issuer string
	// SecretID is the Secrets Manager name or ARN of the client credentials.
	SecretID string
	// SigningKey, when set, is the AWS KMS key (key id, alias/name or ARN) that
	// signs private_key_jwt assertions with kms:Sign, instead of the secret's
	// private_key.
	SigningKey string
	// Parameter is the SSM parameter the token is published to.
	Parameter string

	// RefreshBefore, when set, refreshes a token once less than this is left of it.
	// Zero means the refresh policy's default.
	RefreshBefore time.Duration
	// MaxAge, when set, refreshes a token older than this even if it is still valid.
	MaxAge time.Duration
	// MaxLifetime is the longest lifetime believed: a token whose answer claims more
	// is published as living this long (the refresher notes it). Load sets
	// defaultMaxLifetime when unset.
	MaxLifetime time.Duration
	// Verify, when set, is a call to the partner's API that a new token must pass
	// before it is published.
	Verify *oauth.Check
}

// clone returns a copy that shares no maps or URL with p, so the registry stays
// immutable whatever a caller does with the Provider it was given.
func (p Provider) clone() Provider {
	if p.TokenURL != nil {
		u := *p.TokenURL
		p.TokenURL = &u
	}
	p.ExtraParams = maps.Clone(p.ExtraParams)
	p.Headers = maps.Clone(p.Headers)
	if p.Verify != nil {
		v := *p.Verify
		u := *v.URL
		v.URL, v.Expect = &u, slices.Clone(v.Expect)
		p.Verify = &v
	}
	return p
}

// Registry is the validated, immutable set of providers. Methods return copies, so a
// caller that modifies a Provider (its maps, its URL) cannot change the registry that
// other callers, or later invocations of a warm Lambda, see.
type Registry struct {
	providers   []Provider
	secrets     []secretid.ID // parallel to providers, parsed once for BySecret
	byName      map[string]int
	prefix      string
	fingerprint string
}

// Providers returns every provider in file order, so results and logs come out in
// the order the operator wrote them.
func (r *Registry) Providers() []Provider {
	out := make([]Provider, len(r.providers))
	for i, p := range r.providers {
		out[i] = p.clone()
	}
	return out
}

// Len is the number of providers.
func (r *Registry) Len() int { return len(r.providers) }

// Lookup finds a provider by name, for rotate events that name providers.
func (r *Registry) Lookup(name string) (Provider, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Provider{}, false
	}
	return r.providers[i].clone(), true
}

// BySecret returns, in file order, the providers whose secret_id names the same
// Secrets Manager secret as id (a name, a partial ARN or a full ARN, matched as
// secretid.ID.Matches says), so that a secret-change event rotates exactly the
// tokens minted with that secret. An unparsable id matches nothing.
func (r *Registry) BySecret(id string) []Provider {
	ref, err := secretid.Parse(id)
	if err != nil {
		return nil
	}
	var out []Provider
	for i, s := range r.secrets {
		if s.Matches(ref) {
			out = append(out, r.providers[i].clone())
		}
	}
	return out
}

// Fingerprint identifies the registry's content: two registries with the same
// providers, settings and prefix have the same fingerprint, and any change to one
// of them changes it. The refresher records it with its run record, so a changed
// registry is never taken for the one a record was made with.
func (r *Registry) Fingerprint() string { return r.fingerprint }

// ParameterPrefix is the normalized prefix every Parameter is under (no trailing
// slash), which the token store reads with GetParametersByPath.
func (r *Registry) ParameterPrefix() string { return r.prefix }

// fingerprint hashes the providers as loaded (defaults applied, so two spellings of
// one configuration agree) and the prefix.
func fingerprint(providers []Provider, prefix string) string {
	type canonical struct {
		Provider
		TokenURL  string
		VerifyURL string
	}
	list := make([]canonical, len(providers))
	for i, p := range providers {
		list[i] = canonical{Provider: p}
		if p.TokenURL != nil {
			list[i].TokenURL = p.TokenURL.String()
		}
		if p.Verify != nil {
			list[i].VerifyURL = p.Verify.URL.String()
		}
	}
	b, err := json.Marshal(struct {
		Prefix    string
		Providers []canonical
	}{prefix, list})
	if err != nil {
		panic(err) // plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
