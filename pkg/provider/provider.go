// Package provider holds the registry of OAuth 2.0 client-credentials providers:
// for each partner API, where its token endpoint is, which dialect of the grant it
// speaks, where its client credentials live and where its token is published.
//
// The registry is plain configuration. Every provider the refresher supports is
// described by a Provider value loaded from YAML; there is no code per provider.
package provider

import (
	"maps"
	"net/url"
	"time"
)

// AuthMethod says how the client authenticates to the token endpoint
// (RFC 6749 §2.3.1; names as in the OAuth dynamic client registration registry).
type AuthMethod string

// Client authentication methods.
const (
	// ClientSecretPost sends client_id and client_secret in the request body.
	ClientSecretPost AuthMethod = "client_secret_post"
	// ClientSecretBasic sends them in an HTTP Basic Authorization header.
	ClientSecretBasic AuthMethod = "client_secret_basic"
)

// BasicEncoding says how client_id and client_secret are put into an HTTP Basic header.
type BasicEncoding string

// Basic header encodings.
const (
	// BasicForm form-encodes id and secret before joining them with ':' and base64,
	// as RFC 6749 §2.3.1 requires; strict servers decode them that way.
	BasicForm BasicEncoding = "form"
	// BasicRaw joins them unencoded, as plain RFC 7617 does, for servers that expect that.
	BasicRaw BasicEncoding = "raw"
)

// RequestFormat is the encoding of the token request body.
type RequestFormat string

// Request body formats.
const (
	// FormRequest is application/x-www-form-urlencoded, as RFC 6749 §4.4.2 specifies.
	FormRequest RequestFormat = "form"
	// JSONRequest is a JSON object with the same fields, which some providers require.
	JSONRequest RequestFormat = "json"
)

// ResponseFields are RFC 6901 JSON pointers to the fields of a token response.
// An empty pointer means "find it unaided": the flat RFC 6749 field, or the same
// field under JSON:API's data.attributes.
//
// Load has checked each pointer with ParsePointer, so a consumer may resolve them
// without handling syntax errors; a pointer that matches nothing in a particular
// response is still possible and is the consumer's error to report.
type ResponseFields struct {
	// AccessToken locates the token itself.
	AccessToken string
	// TokenType locates the token type (usually "Bearer").
	TokenType string
	// ExpiresIn locates the lifetime in seconds.
	ExpiresIn string
	// Scope locates the granted scope, which may differ from the requested one.
	Scope string
}

// Provider is one partner API's token endpoint and how to use it.
type Provider struct {
	// Name is unique, matches [a-z0-9_-]+ and names the provider in results, logs and metrics.
	Name string
	// TokenURL is the token endpoint: https, or http only for a loopback host.
	TokenURL *url.URL
	// SecretID is the Secrets Manager name or ARN of the client credentials.
	SecretID string

	// AuthMethod is how the client authenticates; Load sets ClientSecretPost when unset.
	AuthMethod AuthMethod
	// BasicAuthEncoding only matters with ClientSecretBasic; Load sets BasicForm when
	// unset, so code never has to treat an empty value as the default.
	BasicAuthEncoding BasicEncoding
	// RequestFormat is the body encoding; Load sets FormRequest when unset.
	RequestFormat RequestFormat

	// Scope is sent as the scope parameter when not empty (space-separated, RFC 6749 §3.3).
	Scope string
	// Audience is sent as the audience parameter when not empty.
	Audience string
	// ExtraParams are added to the request body.
	ExtraParams map[string]string
	// Headers are added to the token request.
	Headers map[string]string
	// Response locates the fields of the token response.
	Response ResponseFields

	// RefreshBefore, when set, refreshes a token once less than this is left of it.
	// Zero means the refresh policy's default.
	RefreshBefore time.Duration
	// MaxAge, when set, refreshes a token older than this even if it is still valid.
	MaxAge time.Duration
	// DefaultLifetime is assumed when a response has no expires_in and the token is no JWT
	// with an exp claim. Zero means such a response is an error.
	DefaultLifetime time.Duration

	// Parameter is the SSM parameter the token is published to.
	Parameter string
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
	return p
}
