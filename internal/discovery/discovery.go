// Package discovery reads an OAuth 2.0 authorization server's metadata: RFC 8414's
// /.well-known/oauth-authorization-server first, then OpenID Connect Discovery's
// /.well-known/openid-configuration, so that a provider can be configured by its
// issuer instead of its token endpoint.
//
// A metadata document decides where client credentials are sent, so it is held to
// the token endpoint's own rules: the issuer and every endpoint used must pass
// oauth.CheckTokenURL (https, or http only to a loopback host), the document must
// name exactly the configured issuer (RFC 8414 §3.3, which stops one server from
// speaking for another), no redirect is followed and at most maxDocumentBytes of
// an answer is read.
//
// A Cache keeps each issuer's document for the warm environment. The rule for
// reading it again is Moved: when the token endpoint the document named answers
// 404 or 410, or gives no answer at all (connection refused, no such host, a TLS
// handshake that fails, no answer in time), the server may have moved it, so the
// caller forgets the document and discovers once more before giving up. Any other
// refusal (401, invalid_client, 5xx) says the endpoint is where the document says,
// and a new read would change nothing.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/oauth"
)

// maxDocumentBytes caps how much of a metadata answer is read: real documents are a
// few KiB, and a hostile server must not make the function read without end.
const maxDocumentBytes = 256 << 10

// maxTextLen bounds text from outside (an issuer, a method name) in an error.
const maxTextLen = 200

// The well-known suffixes, in the order they are tried.
const (
	oauthSuffix = "/.well-known/oauth-authorization-server"
	oidcSuffix  = "/.well-known/openid-configuration"
)

// defaultAuthMethods is what RFC 8414 §2 says a server supports when its
// document omits token_endpoint_auth_methods_supported.
var defaultAuthMethods = []string{string(oauth.ClientSecretBasic)}

// Errors discovery can end in, for errors.Is.
var (
	// ErrIssuerMismatch means the document names another issuer than the one configured.
	ErrIssuerMismatch = errors.New("metadata names another issuer")
	// ErrInvalidDocument means the answer is no usable metadata document.
	ErrInvalidDocument = errors.New("invalid authorization server metadata")
	// ErrMethodNotSupported means the server does not list the configured auth_method.
	ErrMethodNotSupported = errors.New("auth_method not supported by the authorization server")
	// ErrUnavailable means no metadata document could be fetched.
	ErrUnavailable = errors.New("authorization server metadata unavailable")
)

// Metadata is what the refresher uses of an authorization server's metadata.
type Metadata struct {
	// Issuer is the document's issuer, equal to the configured one.
	Issuer string
	// TokenEndpoint is token_endpoint.
	TokenEndpoint *url.URL
	// MTLSTokenEndpoint is mtls_endpoint_aliases.token_endpoint (RFC 8705 §5), or nil.
	MTLSTokenEndpoint *url.URL
	// AuthMethods is token_endpoint_auth_methods_supported, or RFC 8414's default
	// (client_secret_basic) when the document leaves it out.
	AuthMethods []string
	// Source is the URL the document was read from.
	Source string
}

// document is the wire form; fields the refresher does not use are ignored.
type document struct {
	Issuer              *string  `json:"issuer"`
	TokenEndpoint       string   `json:"token_endpoint"`
	AuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	MTLSEndpointAliases *struct {
		TokenEndpoint string `json:"token_endpoint"`
	} `json:"mtls_endpoint_aliases"`
}

// Parse reads a metadata document and checks it against issuer, the configured
// one: the issuer must be equal, code point for code point (RFC 8414 §3.3), and
// the token endpoints must pass oauth.CheckTokenURL.
func Parse(body []byte, issuer string) (*Metadata, error) {
	var d document
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidDocument, cut.String(err.Error(), maxTextLen))
	}
	switch {
	case d.Issuer == nil:
		return nil, fmt.Errorf("%w: no issuer", ErrInvalidDocument)
	case *d.Issuer != issuer:
		return nil, fmt.Errorf("%w: %q, not %q", ErrIssuerMismatch, cut.String(*d.Issuer, maxTextLen), issuer)
	case d.TokenEndpoint == "":
		return nil, fmt.Errorf("%w: no token_endpoint", ErrInvalidDocument)
	}
	m := &Metadata{Issuer: issuer, AuthMethods: d.AuthMethods}
	var err error
	if m.TokenEndpoint, err = endpointURL("token_endpoint", d.TokenEndpoint); err != nil {
		return nil, err
	}
	if d.MTLSEndpointAliases != nil && d.MTLSEndpointAliases.TokenEndpoint != "" {
		if m.MTLSTokenEndpoint, err = endpointURL("mtls_endpoint_aliases.token_endpoint", d.MTLSEndpointAliases.TokenEndpoint); err != nil {
			return nil, err
		}
	}
	if d.AuthMethods == nil {
		m.AuthMethods = slices.Clone(defaultAuthMethods)
	}
	return m, nil
}

// endpointURL parses an endpoint the document names and applies the token URL rules.
func endpointURL(field, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a URL", ErrInvalidDocument, field)
	}
	if err := oauth.CheckTokenURL(u); err != nil {
		return nil, fmt.Errorf("%w: %s %v", ErrInvalidDocument, field, err)
	}
	return u, nil
}

// Supports says whether the server lists method for its token endpoint, with an
// error naming what it lists when it does not.
func (m *Metadata) Supports(method string) error {
	if slices.Contains(m.AuthMethods, method) {
		return nil
	}
	listed := make([]string, len(m.AuthMethods))
	for i, s := range m.AuthMethods {
		listed[i] = cut.String(s, maxTextLen)
	}
	return fmt.Errorf("%w: auth_method %s is not in the server's token_endpoint_auth_methods_supported %s",
		ErrMethodNotSupported, method, cut.String(strings.Join(listed, ", "), 4*maxTextLen))
}

// TokenURL is the endpoint to send the token request to: with mutual TLS the mTLS
// alias when the server names one (RFC 8705 §5), else token_endpoint.
func (m *Metadata) TokenURL(mtls bool) *url.URL {
	if mtls && m.MTLSTokenEndpoint != nil {
		return m.MTLSTokenEndpoint
	}
	return m.TokenEndpoint
}

// WellKnownURLs are the metadata locations of issuer, in the order tried: RFC 8414
// §3.1 inserts the well-known suffix between host and path; OpenID Connect
// Discovery §4 appends it to the issuer. For an issuer without a path the two
// differ only in the suffix. issuer must pass CheckIssuer.
func WellKnownURLs(issuer *url.URL) []string {
	path := strings.TrimSuffix(issuer.EscapedPath(), "/")
	base := url.URL{Scheme: issuer.Scheme, Host: issuer.Host}
	rfc := base
	rfc.Path = oauthSuffix + issuer.Path
	rfc.RawPath = oauthSuffix + issuer.EscapedPath()
	if path == "" {
		rfc.Path, rfc.RawPath = oauthSuffix, ""
	}
	oidc := base
	oidc.Path = strings.TrimSuffix(issuer.Path, "/") + oidcSuffix
	oidc.RawPath = path + oidcSuffix
	return []string{rfc.String(), oidc.String()}
}

// CheckIssuer parses a configured issuer: the token URL rules, and no query or
// fragment (RFC 8414 §2).
func CheckIssuer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if err := oauth.CheckTokenURL(u); err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("must not contain a query (RFC 8414 §2)")
	}
	return u, nil
}

// Fetcher reads metadata documents over HTTP. Its zero value is ready to use.
type Fetcher struct {
	// HTTPClient sends the requests; its CheckRedirect is replaced so that no
	// redirect is followed. http.DefaultClient's transport when nil.
	HTTPClient *http.Client
}

// Discover reads issuer's metadata: RFC 8414's location first, then OpenID
// Connect's when the first answers anything but a document (a 404 mostly). A
// document found but refused (another issuer, an insecure endpoint) is final: the
// second location is not asked to overrule it.
func (f *Fetcher) Discover(ctx context.Context, issuer string) (*Metadata, error) {
	u, err := CheckIssuer(issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %v", ErrInvalidDocument, err)
	}
	var reasons []string
	for _, loc := range WellKnownURLs(u) {
		body, err := f.get(ctx, loc)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, loc, ctx.Err())
			}
			reasons = append(reasons, fmt.Sprintf("%s: %v", loc, err))
			continue
		}
		m, err := Parse(body, issuer)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		m.Source = loc
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(reasons, "; "))
}

// get reads one document: 200 with a body of at most maxDocumentBytes, no redirect.
func (f *Fetcher) get(ctx context.Context, loc string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if f.HTTPClient != nil {
		c.Transport, c.Timeout, c.Jar = f.HTTPClient.Transport, f.HTTPClient.Timeout, f.HTTPClient.Jar
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("no answer: %v", cut.String(err.Error(), maxTextLen))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("answered %d, a redirect, which is not followed", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %v", cut.String(err.Error(), maxTextLen))
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", maxDocumentBytes)
	}
	return body, nil
}

// Cache keeps each issuer's metadata for TTL, so that a warm environment reads it
// once and not at every run. Its zero value caches nothing; make one with NewCache.
// It is safe for concurrent use.
type Cache struct {
	fetch func(ctx context.Context, issuer string) (*Metadata, error)
	ttl   time.Duration
	now   func() time.Time

	mu      chan struct{} // a one-slot lock that a waiting caller can leave when ctx ends
	entries map[string]cached
}

type cached struct {
	m    *Metadata
	read time.Time
}

// DefaultTTL is how long a document is kept: servers change their metadata rarely,
// and Moved covers a token endpoint that moves before then.
const DefaultTTL = time.Hour

// NewCache returns a cache over f that keeps documents for ttl (DefaultTTL when
// zero); now is the clock, time.Now when nil.
func NewCache(f *Fetcher, ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{fetch: f.Discover, ttl: ttl, now: now, mu: make(chan struct{}, 1), entries: map[string]cached{}}
}

// Get returns issuer's metadata, read again once its TTL has passed. A failed read
// is not cached.
func (c *Cache) Get(ctx context.Context, issuer string) (*Metadata, error) {
	select {
	case c.mu <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-c.mu }()
	if e, ok := c.entries[issuer]; ok && c.now().Sub(e.read) < c.ttl {
		return e.m, nil
	}
	m, err := c.fetch(ctx, issuer)
	if err != nil {
		return nil, err
	}
	c.entries[issuer] = cached{m: m, read: c.now()}
	return m, nil
}

// Forget drops issuer's document, so that the next Get reads it again.
func (c *Cache) Forget(issuer string) {
	c.mu <- struct{}{}
	delete(c.entries, issuer)
	<-c.mu
}

// Moved reports whether a token request's error suggests the token endpoint moved
// since the document was read: the endpoint answered 404 or 410, or could not be
// reached at all. The caller then forgets the document and discovers once more.
func Moved(err error) bool {
	if ae := (*oauth.Error)(nil); errors.As(err, &ae) {
		return ae.StatusCode == http.StatusNotFound || ae.StatusCode == http.StatusGone
	}
	return oauth.Unreachable(err)
}
