package tokens

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// ParameterReader is the one SSM call a Source needs. *ssm.Client satisfies it;
// tests pass a fake, so consumers can test their own code without AWS.
type ParameterReader interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// ErrExpired is returned (wrapped) when the parameter holds a token that has
// already expired: the refresher has not run, or has failed, for longer than the
// token's lifetime, and using the token would only earn a 401 from the partner.
var ErrExpired = errors.New("published token is expired")

const (
	// DefaultMargin is how long before expires_at a Source re-reads the parameter.
	// The refresher replaces a token long before that (by default more than 10
	// minutes before it expires, and more than 5 even when one scheduled run
	// failed), so a minute is ample: the re-read finds the successor published.
	DefaultMargin = time.Minute

	// DefaultTimeout bounds one read of the parameter, SDK retries included, so a
	// hanging SSM endpoint cannot hold every caller of a Source indefinitely.
	DefaultTimeout = 10 * time.Second

	// DefaultQuietPeriod is how long a Source keeps serving a still-valid cached
	// token instead of reading again: after a read failed, after a read found a
	// token already inside the margin, and after a re-read on a 401 found the same
	// refused token. Without it, every request in the margin window, during an SSM
	// outage, or while a partner refuses the token would be a GetParameter call, and
	// a busy fleet of consumers would exhaust the GetParameter quota that the
	// refresher and every other consumer in the account share.
	DefaultQuietPeriod = 5 * time.Second
)

// Option configures a Source.
type Option func(*Source)

// WithMargin sets how long before a token's expiry the Source re-reads the
// parameter (DefaultMargin when not given). Use a margin at least as long as your
// slowest request, so a token does not expire while a request is in flight.
// Negative values are treated as zero.
func WithMargin(d time.Duration) Option {
	return func(s *Source) { s.margin = max(d, 0) }
}

// WithClock replaces time.Now, so tests can move time instead of waiting for it.
// It decides expiry, the margin and the quiet period; the rotation wait and the
// read timeout are real time, since they bound how long a caller is held.
func WithClock(now func() time.Time) Option {
	return func(s *Source) {
		if now != nil {
			s.now = now
		}
	}
}

// WithTimeout bounds one read of the parameter (DefaultTimeout when not given).
// The bound is separate from the caller's context because one read serves every
// concurrent caller: a caller that gives up does not cancel it for the others.
// Values <= 0 are ignored.
func WithTimeout(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithQuietPeriod sets how long the Source reads no parameter again after a read
// failed, or after a re-read on a 401 returned the same refused token
// (DefaultQuietPeriod when not given). Values <= 0 are ignored.
func WithQuietPeriod(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.quiet = d
		}
	}
}

// Source reads one published token from SSM Parameter Store and caches it in
// memory, so that a consumer calls GetParameter about once per token lifetime
// rather than once per request. It is safe for concurrent use.
//
// The cached token is used until it is within the margin of its expiry or until
// Invalidate is called; then the parameter is read again, once, however many
// goroutines are waiting. When that read fails but the cached token has not yet
// expired, the cached token is returned without an error: the partner still
// accepts it, and the refresher, not each consumer, is the one that alarms.
//
// Send requests with NewClient or Transport, which add the 401 rule. A Source is
// deliberately not an oauth2.TokenSource: oauth2.NewClient would wrap it in
// oauth2.ReuseTokenSource, which keeps each token until 10 s before its expiry,
// never sees a 401 and so keeps sending a token the partner refused. For a
// library that only takes an oauth2.TokenSource, TokenSource adapts it.
type Source struct {
	client  ParameterReader
	name    string
	margin  time.Duration
	timeout time.Duration
	quiet   time.Duration
	now     func() time.Time

	rotator Rotator
	wait    time.Duration // bound on waiting for a successor after a rotation

	group singleflight.Group

	mu sync.Mutex
	// gen counts Invalidate calls; a cached token is trusted only if it was read
	// after the latest one, so a read already in flight when Invalidate is called
	// cannot make the invalidation void.
	gen      uint64
	tok      Token
	have     bool
	tokGen   uint64    // gen when the cached token's read started
	readAt   time.Time // when the cached token was read
	failedAt time.Time // when the last read failed; zero after a success
	// refused is the access token that a re-read on a 401 found still published
	// (after any rotation and wait), at refusedAt: 401s with it cause no read, and
	// no rotation, for the quiet period.
	refused   string
	refusedAt time.Time
}

// NewSource returns a Source for the SSM parameter name (a name such as
// /token-refresher/tokens/ecard, or an ARN). It reads nothing until the first
// token is asked for, so it is cheap to create during a Lambda's init phase.
// It panics when client is nil or name is empty: both are programming errors
// better found at start-up than on the first request.
func NewSource(client ParameterReader, name string, opts ...Option) *Source {
	if client == nil {
		panic("tokens: NewSource called with a nil ParameterReader")
	}
	if name == "" {
		panic("tokens: NewSource called with an empty parameter name")
	}
	s := &Source{
		client:  client,
		name:    name,
		margin:  DefaultMargin,
		timeout: DefaultTimeout,
		quiet:   DefaultQuietPeriod,
		now:     time.Now,
		wait:    DefaultRotationWait,
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Name returns the SSM parameter name the Source reads, for log lines and errors.
func (s *Source) Name() string { return s.name }

// TokenSource adapts s for a library that takes an oauth2.TokenSource and makes
// its own requests. Such a library gets s's cache, margin and fallback, but not
// the 401 rule, which lives in Transport. Do not pass it to oauth2.NewClient: use
// NewClient, whose client follows the 401 rule; oauth2.NewClient's
// ReuseTokenSource would keep a refused token until it expires.
func (s *Source) TokenSource() oauth2.TokenSource { return tokenSource{s} }

// tokenSource is the oauth2.TokenSource view of a Source.
type tokenSource struct{ s *Source }

// Token is TokenContext without a caller context; the read is still bounded by
// the Source's timeout.
func (t tokenSource) Token() (*oauth2.Token, error) { return t.s.TokenContext(context.Background()) }

// TokenContext returns the current access token, reading the parameter when the
// cached token is missing, near expiry or invalidated. ctx bounds only this
// caller's wait; the shared read keeps going for the other callers.
//
// Errors name the parameter and never contain its value. They wrap ErrMalformed
// when the value is not a published token, ErrExpired when it holds an expired
// one, and the SDK's error otherwise, so errors.As finds *types.ParameterNotFound.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	tok, ok := s.usableLocked(s.now())
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return toOAuth2(tok), nil
	}

	ch := s.group.DoChan(strconv.FormatUint(gen, 10), func() (any, error) {
		return s.read(ctx, gen)
	})
	var err error
	select {
	case res := <-ch:
		if res.Err == nil {
			return toOAuth2(res.Val.(Token)), nil
		}
		err = res.Err
	case <-ctx.Done():
		err = fmt.Errorf("tokens: read parameter %q: %w", s.name, context.Cause(ctx))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have && s.tok.Valid(s.now()) {
		return toOAuth2(s.tok), nil
	}
	return nil, err
}

// Invalidate makes the next TokenContext read the parameter again even though the
// cached token has not reached the margin. Call it when the partner rejected the
// token (Transport does so on a 401): the refresher may have rotated it early.
func (s *Source) Invalidate() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// invalidateToken invalidates only if accessToken is still the cached token, so
// that many requests failing with the same old token cause one re-read, not one
// each, and none of them discards a successor another goroutine already read. A
// token a re-read already found still published is not read again for the quiet
// period.
func (s *Source) invalidateToken(accessToken string) {
	s.mu.Lock()
	if s.have && s.tokGen == s.gen && s.tok.AccessToken == accessToken && !s.refusedLocked(accessToken, s.now()) {
		s.gen++
	}
	s.mu.Unlock()
}

// refusedLocked reports whether accessToken was found still published after a
// 401 less than the quiet period ago.
func (s *Source) refusedLocked(accessToken string, now time.Time) bool {
	return accessToken == s.refused && now.Before(s.refusedAt.Add(s.quiet))
}

// usableLocked reports whether the cached token may be returned without a read.
func (s *Source) usableLocked(now time.Time) (Token, bool) {
	if !s.have || !s.tok.Valid(now) {
		return Token{}, false
	}
	if now.Before(s.failedAt.Add(s.quiet)) {
		return s.tok, true
	}
	if s.tokGen != s.gen {
		return Token{}, false
	}
	if now.Before(s.tok.ExpiresAt.Add(-s.margin)) || now.Before(s.readAt.Add(s.quiet)) {
		return s.tok, true
	}
	return Token{}, false
}

// read is the body of the one shared read for generation gen. It runs under the
// first caller's context values but not its cancellation, because the result is
// shared with callers whose contexts are still live.
func (s *Source) read(ctx context.Context, gen uint64) (Token, error) {
	// A caller that found the cache stale may reach here just after another
	// shared read stored a fresh token; use that rather than read again.
	s.mu.Lock()
	if tok, ok := s.usableLocked(s.now()); ok && s.gen == gen {
		s.mu.Unlock()
		return tok, nil
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	tok, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keepLocked(tok, err, gen)
}

// keepLocked records the outcome of a read made for generation gen: the time of
// a failure, or tok as the cached token unless the cache already holds a newer
// generation's. It returns what the read returned.
func (s *Source) keepLocked(tok Token, err error, gen uint64) (Token, error) {
	now := s.now()
	if err != nil {
		s.failedAt = now
		return Token{}, err
	}
	if !s.have || gen >= s.tokGen {
		s.tok, s.have, s.tokGen, s.readAt, s.failedAt = tok, true, gen, now, time.Time{}
	}
	return tok, nil
}

// fetch reads and checks the parameter, without touching the cache.
func (s *Source) fetch(ctx context.Context) (Token, error) {
	decrypt := true
	out, err := s.client.GetParameter(ctx, &ssm.GetParameterInput{Name: &s.name, WithDecryption: &decrypt})
	if err != nil {
		return Token{}, fmt.Errorf("tokens: read parameter %q: %w", s.name, err)
	}
	if out == nil || out.Parameter == nil || out.Parameter.Value == nil {
		return Token{}, fmt.Errorf("tokens: parameter %q: %w: no value", s.name, ErrMalformed)
	}
	tok, err := Parse([]byte(*out.Parameter.Value))
	if err != nil {
		// Parse's errors describe the problem without quoting the value.
		return Token{}, fmt.Errorf("tokens: parameter %q: %w", s.name, err)
	}
	if !tok.Valid(s.now()) {
		return Token{}, fmt.Errorf("tokens: parameter %q holds a token that expired at %s: %w",
			s.name, tok.ExpiresAt.UTC().Format(time.RFC3339), ErrExpired)
	}
	return tok, nil
}

// toOAuth2 gives each caller its own copy, so one caller changing the token
// cannot affect another.
func toOAuth2(t Token) *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.ExpiresAt}
}
