// Package oauth obtains access tokens from OAuth 2.0 token endpoints with the
// client-credentials grant (RFC 6749 §4.4), in whatever dialect a provider speaks:
// form or JSON bodies, credentials in the body or in HTTP Basic, flat or JSON:API
// answers, and the many ways providers say no.
//
// It builds the request and reads the answer itself, because
// golang.org/x/oauth2/clientcredentials cannot speak two of the seed dialects (why:
// docs/design.md, "Why not golang.org/x/oauth2/clientcredentials"). An Endpoint
// describes a provider's dialect, as x/oauth2's Endpoint and AuthStyle do for the
// standard one. The package knows nothing of AWS or of how endpoints are configured.
//
// Every error the client returns, and the scope it reports, has the client secret
// removed first, in every form the client sends it or that can be derived from it
// (raw, percent- and form-encoded, JSON-escaped, HTML entities, base64 of the secret
// and of id:secret, any start of eight characters or more), and only then is cut.
// A secret of fewer than four characters is removed only where it stands alone,
// with no letter or digit right before or after it: inside a word it cannot be
// told from the word's letters, and removing it there would garble every message.
package oauth

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// maxResponseBytes caps how much of a token endpoint's answer is read.
const maxResponseBytes = 1 << 20

// Defaults for a Client's zero fields.
const (
	defaultRequestTimeout = 10 * time.Second
	defaultMaxAttempts    = 4
	defaultMaxRetryAfter  = 30 * time.Second
)

// Credentials are a client's identity at a token endpoint. Which fields a method
// needs: ClientSecret for the secret methods and ClientSecretJWT; Signer or
// PrivateKey for PrivateKeyJWT; Certificate and PrivateKey for mutual TLS.
type Credentials struct {
	ClientID     string
	ClientSecret string
	// PrivateKey is a PEM private key: PKCS#8, PKCS#1 or SEC1.
	PrivateKey string
	// Certificate is a PEM certificate chain, leaf first: presented in mutual TLS,
	// and named by its thumbprints in a PrivateKeyJWT assertion's header.
	Certificate string
	// Signer, when set, signs PrivateKeyJWT assertions instead of PrivateKey: a key
	// held elsewhere, such as in AWS KMS. Its errors are reported redacted.
	Signer crypto.Signer
}

// Client requests tokens. Its zero value is ready to use.
type Client struct {
	// HTTPClient sends the requests. When nil, a client that never follows redirects
	// and reads at most maxHeaderBytes of an answer's headers is used. A client given
	// here has its CheckRedirect replaced for the same reason: a redirected token
	// request could carry the client secret elsewhere.
	HTTPClient *http.Client
	// RequestTimeout bounds each attempt; defaultRequestTimeout when zero.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts for one token, the first included.
	MaxAttempts int
	// MaxRetryAfter caps the wait a Retry-After header can impose.
	MaxRetryAfter time.Duration
	// InitialBackoff is the first wait between attempts, before jitter; 500ms when zero.
	InitialBackoff time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// A TokenOption changes one Token call.
type TokenOption func(*tokenCall)

type tokenCall struct {
	now func() time.Time
}

// WithClock makes one Token call tell time by now instead of time.Now: the token's
// issue and expiry times are on that clock. It is how a caller that runs on a clock
// of its own hands that clock over (see the refresher's Now).
func WithClock(now func() time.Time) TokenOption {
	return func(c *tokenCall) {
		if now != nil {
			c.now = now
		}
	}
}

// maxHeaderBytes bounds the status line and headers of an answer the default HTTP
// client reads: net/http's own default is 10 MB, and its errors quote a malformed
// status line whole.
const maxHeaderBytes = 64 << 10

// jwtTolerance is how much earlier than expires_in says a JWT's exp may be before it
// is taken instead: exp has whole seconds and the provider's clock its own skew.
const jwtTolerance = time.Minute

// maxScopeLen bounds the granted scope taken from an answer; it is published.
const maxScopeLen = 1024

// defaultTransport is http.DefaultTransport with a bound on answer headers. It is
// read-only once made, and shared so that connections are reused.
var defaultTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = maxHeaderBytes
	return t
}()

// Token obtains a new access token from e with cred. The token's lifetime is
// counted from when its request was sent, and is the shortest of what the answer
// states (expires_in, and a JWT's exp). Network errors, 429 and 5xx are retried with
// exponential backoff and jitter, honouring Retry-After up to MaxRetryAfter, within
// ctx's deadline; any other refusal, and a failed TLS handshake, is final. When ctx
// ends first, the error says what the endpoint last did, and errors.Is finds the
// context's error.
//
// The returned token has no Provider or SecretVersion: those are the publisher's.
// Every error passes through one step that removes the client secret in every form
// the client sends or that can be derived from it, and then bounds the text to
// maxErrorLen; errors.Is and errors.As still find this package's sentinels, the
// context's errors and *Error.
//
// With PrivateKeyJWT and ClientSecretJWT every request carries a newly signed
// assertion; the assertions and the signatures are redacted as the secret is, and
// so are the private key's forms. With the mutual TLS methods the request presents
// the certificate in the handshake, over a transport of its own.
func (c *Client) Token(ctx context.Context, e Endpoint, cred Credentials, opts ...TokenOption) (*tokens.Token, error) {
	call := tokenCall{now: time.Now}
	for _, o := range opts {
		o(&call)
	}
	var made sent
	tok, err := c.token(ctx, e, cred, call.now, &made)
	if err != nil {
		return nil, sanitize(err, cred, made.all()...)
	}
	if tok.Scope != "" {
		tok.Scope = cut.String(newRedactor(cred, made.all()...).redact(tok.Scope), maxScopeLen)
	}
	return tok, nil
}

func (c *Client) token(ctx context.Context, e Endpoint, cred Credentials, now func() time.Time, made *sent) (*tokens.Token, error) {
	if err := CheckTokenURL(e.TokenURL); err != nil {
		return nil, fmt.Errorf("%w: %v", errInsecureURL, err)
	}
	if err := checkCredentials(e.AuthMethod, cred); err != nil {
		return nil, err
	}
	hc := c.httpClient()
	if e.AuthMethod.MutualTLS() {
		var closeIdle func()
		var err error
		if hc, closeIdle, err = mutualTLS(hc, cred); err != nil {
			return nil, err
		}
		defer closeIdle()
	}

	var last error // the last attempt's error
	attempt := func() (*tokens.Token, error) {
		if err := ctx.Err(); err != nil {
			// No attempt starts once the caller's time is up.
			return nil, backoff.Permanent(err)
		}
		body, contentType, err := requestBody(e, cred, now(), made)
		if err != nil {
			return nil, backoff.Permanent(err)
		}
		tok, err := c.attempt(ctx, hc, e, cred, body, contentType, now)
		if err != nil {
			last = err
		}
		return tok, err
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = cmp.Or(c.InitialBackoff, 500*time.Millisecond)
	bo.MaxInterval = 10 * time.Second
	opts := []backoff.RetryOption{
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(uint(max(1, cmp.Or(c.MaxAttempts, defaultMaxAttempts)))),
		backoff.WithMaxElapsedTime(0),
	}
	if deadline, ok := ctx.Deadline(); ok {
		// Give up as soon as the next wait would pass the deadline, with the
		// endpoint's own reason rather than "context deadline exceeded".
		opts = append(opts, backoff.WithMaxElapsedTime(time.Until(deadline)))
	}
	tok, err := backoff.Retry(ctx, attempt, opts...)
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(last, ctx.Err()) {
		// The time ran out while waiting to try again: the last real reason stands.
		return nil, fmt.Errorf("%w; %w before another attempt", last, timeUp{ctx.Err()})
	}
	return tok, err
}

// attempt sends one request. Errors worth retrying are returned as they are; final
// ones wrapped in backoff.Permanent.
func (c *Client) attempt(ctx context.Context, hc *http.Client, e Endpoint, cred Credentials, body []byte, contentType string, now func() time.Time) (*tokens.Token, error) {
	timeout := cmp.Or(c.RequestTimeout, defaultRequestTimeout)
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := c.newRequest(actx, e, cred, body, contentType)
	if err != nil {
		return nil, backoff.Permanent(err)
	}
	sent := now()
	started := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		err = scrubURLError(err)
		switch {
		case ctx.Err() != nil:
			// The caller's time ran out with this request in flight: that the endpoint
			// had not answered yet is the real reason, not the context's error.
			return nil, backoff.Permanent(fmt.Errorf("%w: no answer %s after the request was sent; %w",
				errUnreachable, time.Since(started).Round(time.Millisecond), timeUp{ctx.Err()}))
		case actx.Err() != nil:
			return nil, fmt.Errorf("%w: no answer within %s", errUnreachable, timeout)
		case e.AuthMethod.MutualTLS() && certificateRefused(err):
			// The server refused the client certificate in the handshake, as a
			// server that verifies it at the TLS layer does: a refusal of the
			// credentials, so that a rotated certificate falls back to the previous.
			return nil, backoff.Permanent(&Error{Code: "invalid_client", Description: "the TLS handshake refused the client certificate: " + err.Error()})
		case isTLSFailure(err):
			// A certificate that does not verify will not verify on the next attempt.
			return nil, backoff.Permanent(fmt.Errorf("%w: TLS: %v", errUnreachable, err))
		}
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer resp.Body.Close()
	return c.readResponse(resp, e, sent, now)
}

// timeUp says that the caller's time ran out in words, keeping the context's error
// for errors.Is: "context deadline exceeded" alone would hide what the endpoint did.
type timeUp struct{ err error }

func (e timeUp) Error() string { return "the time allowed ran out" }
func (e timeUp) Unwrap() error { return e.err }

// isTLSFailure recognises a failed handshake: a certificate that does not verify,
// or a peer that does not speak TLS.
func isTLSFailure(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &unknown) ||
		errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &alert)
}

// newRequest builds the token request: the body in the endpoint's format, its
// headers, and the client's authentication.
func (c *Client) newRequest(ctx context.Context, e Endpoint, cred Credentials, body []byte, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.TokenURL.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build token request: %w", err)
	}
	for k, v := range e.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", contentType)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if e.AuthMethod == ClientSecretBasic {
		req.Header.Set("Authorization", "Basic "+basicCredentials(cred, e.BasicEncoding))
	}
	return req, nil
}

// readResponse reads at most maxResponseBytes of the answer and turns it into a
// token whose lifetime counts from sent, or into the error the endpoint stated.
func (c *Client) readResponse(resp *http.Response, e Endpoint, sent time.Time, now func() time.Time) (*tokens.Token, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read token response: %v", errUnreachable, scrubURLError(err))
	}
	if len(data) > maxResponseBytes {
		return nil, backoff.Permanent(fmt.Errorf("%w: response body exceeds %d bytes", errBadResponse, maxResponseBytes))
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, backoff.Permanent(&Error{StatusCode: resp.StatusCode,
			Description: "redirect to " + redirectHost(resp) + " not followed"})
	}

	r, err := parseResponse(resp.StatusCode, data, e.Response)
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) && oe.temporary() {
			oe.RetryAfter = resp.Header.Get("Retry-After")
			if wait, ok := c.retryAfter(oe.RetryAfter, sent); ok {
				return nil, fmt.Errorf("%w (%w)", oe, &backoff.RetryAfterError{Duration: wait})
			}
			return nil, oe
		}
		return nil, backoff.Permanent(err)
	}

	tok := &tokens.Token{AccessToken: r.AccessToken, TokenType: r.TokenType, Scope: r.Scope, IssuedAt: sent.UTC()}
	exp, isJWT := jwtExpiry(r.AccessToken)
	switch {
	case r.ExpiresIn > 0:
		tok.ExpiresAt = sent.Add(r.ExpiresIn).UTC()
		if isJWT && exp.Before(tok.ExpiresAt.Add(-jwtTolerance)) {
			// Two statements of one lifetime that disagree: the shorter wins, so a
			// unit mistake in expires_in (milliseconds) cannot outlive the token's
			// own exp claim.
			tok.ExpiresAt = exp
		}
	case isJWT:
		tok.ExpiresAt = exp
	case e.DefaultLifetime > 0:
		tok.ExpiresAt = sent.Add(e.DefaultLifetime).UTC()
	default:
		return nil, backoff.Permanent(fmt.Errorf("%w: no expires_in, the token is no JWT with exp, and no default_lifetime is configured", errNoExpiry))
	}
	if !tok.ExpiresAt.After(now()) {
		return nil, backoff.Permanent(fmt.Errorf("%w: it expired at %s", ErrInvalidToken, tok.ExpiresAt.Format(time.RFC3339)))
	}
	return tok, nil
}

func (c *Client) httpClient() *http.Client {
	hc := http.Client{Transport: defaultTransport}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3: seconds or an HTTP date),
// capped at MaxRetryAfter.
func (c *Client) retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(max(secs, 0)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, cmp.Or(c.MaxRetryAfter, defaultMaxRetryAfter)), true
}

// requestBody encodes the grant request in the endpoint's format, with a newly
// signed assertion (its time now) for the assertion methods.
func requestBody(e Endpoint, cred Credentials, now time.Time, made *sent) ([]byte, string, error) {
	fields := map[string]string{"grant_type": "client_credentials"}
	switch {
	case e.AuthMethod == ClientSecretBasic:
	case e.AuthMethod.SignsAssertion():
		a, err := assertion(e, cred, now, made)
		if err != nil {
			return nil, "", err
		}
		fields["client_id"] = cred.ClientID
		fields["client_assertion_type"] = AssertionType
		fields["client_assertion"] = a
	case e.AuthMethod.MutualTLS():
		fields["client_id"] = cred.ClientID // the certificate authenticates
	default:
		fields["client_id"] = cred.ClientID
		fields["client_secret"] = cred.ClientSecret
	}
	if e.Scope != "" {
		fields["scope"] = e.Scope
	}
	if e.Audience != "" {
		fields["audience"] = e.Audience
	}
	for k, v := range e.ExtraParams {
		if _, reserved := ReservedParam(k); !reserved {
			fields[k] = v
		}
	}
	if e.RequestFormat == JSONRequest {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, "", fmt.Errorf("encode token request: %w", err)
		}
		// JSON is UTF-8 by definition (RFC 8259); the charset is stated because
		// some providers (eCard) ask for exactly this header.
		return b, "application/json; charset=utf-8", nil
	}
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	return []byte(form.Encode()), "application/x-www-form-urlencoded", nil
}

// basicCredentials builds the value of an HTTP Basic header. RFC 6749 §2.3.1 has
// id and secret form-encoded before they are joined, so a ':' or '%' in a secret
// survives (formEncode, with a space as %20, which both kinds of server decoder
// read as a space); some servers only know plain RFC 7617 and want them as they are.
func basicCredentials(cred Credentials, enc BasicEncoding) string {
	id, secret := cred.ClientID, cred.ClientSecret
	if enc != BasicRaw {
		id, secret = formEncode(id), formEncode(secret)
	}
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}

// scrubURLError drops the request URL from a transport error. The URL holds no
// secret here, but a provider may put an API key in a configured token_url's query.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func redirectHost(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "an unknown location"
	}
	return loc.Host
}
