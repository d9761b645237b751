package tokens

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"golang.org/x/oauth2"
)

// DefaultRotationWait bounds how long, after sending a conditional rotation, a
// Source polls the parameter for the successor before it gives up and the
// request gets the partner's 401. The refresher answers a rotation with one token
// request, which usually takes well under a second, plus the queueing of an
// asynchronous invocation.
const DefaultRotationWait = 5 * time.Second

// Rotation is the conditional rotation a consumer sends the refresher function
// when the partner refused the latest published token: "replace this provider's
// token, but only while the published one is still the refused one". Any number of
// them for one refused token, from however many consumers, make one token request;
// the refresher answers the others "skipped".
//
// Its JSON form is the event the function accepts:
//
//	{"action":"rotate","providers":["ecard"],"if_token":"c7798e96"}
type Rotation struct {
	// Provider is the provider whose token was refused, as the published token
	// names it.
	Provider string
	// IfToken is the refused token's Fingerprint, never the token itself.
	IfToken string
}

// MarshalJSON encodes r as the refresher's conditional rotation event.
func (r Rotation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Action    string   `json:"action"`
		Providers []string `json:"providers"`
		IfToken   string   `json:"if_token"`
	}{"rotate", []string{r.Provider}, r.IfToken})
}

// A Rotator sends a conditional rotation to the refresher function. It should
// return once the event is sent, not wait for the rotation: the Source polls the
// parameter for the successor itself. A Lambda consumer invokes the function
// asynchronously (InvocationType Event) with the event as the payload, which
// needs lambda:InvokeFunction on the function; see examples/consumer-go.
type Rotator interface {
	Rotate(ctx context.Context, r Rotation) error
}

// RotatorFunc adapts a function to a Rotator.
type RotatorFunc func(ctx context.Context, r Rotation) error

// Rotate calls f.
func (f RotatorFunc) Rotate(ctx context.Context, r Rotation) error { return f(ctx, r) }

// WithRotation makes the Source ask the refresher for a new token when the partner
// refuses the latest published one: on a 401, when a re-read finds the same token
// still published, the Source sends r a conditional rotation for it, polls the
// parameter for the successor (at most the rotation wait), and Transport retries
// the request once with it. Concurrent requests refused with one token share one
// rotation and one wait. When r fails, or no successor comes in time, the request
// gets the partner's 401, and for the quiet period further 401s with that token
// send nothing. Without this option such a request gets the partner's 401 at once,
// and the token is replaced only by the refresher's next scheduled run.
func WithRotation(r Rotator) Option {
	return func(s *Source) { s.rotator = r }
}

// WithRotationWait bounds how long the Source waits for the successor after
// sending a rotation (DefaultRotationWait when not given). The request's own
// context bounds it too. Values <= 0 are ignored.
func WithRotationWait(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.wait = d
		}
	}
}

// Poll delays while waiting for a successor: short at first, because the
// refresher usually publishes within a second, then at most one read a second.
// (The SDK's retry backoff counts in whole seconds, too coarse here.)
const (
	firstPoll = 100 * time.Millisecond
	maxPoll   = time.Second
)

// successor returns the token to retry a request with after the partner refused
// refused: a successor when one is published (or appears after a rotation), else
// refused itself, meaning "no better token". Concurrent callers refused with one
// token share one re-read, rotation and wait; after that found no successor, the
// quiet period passes without a read. ctx bounds only this caller's wait.
func (s *Source) successor(ctx context.Context, refused string) (*oauth2.Token, error) {
	if tok, done := s.settled(refused); done {
		return toOAuth2(tok), nil
	}
	ch := s.group.DoChan("refused\x00"+refused, func() (any, error) {
		return s.recover(ctx, refused)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return toOAuth2(res.Val.(Token)), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokens: wait for a successor of the refused token in %q: %w", s.name, context.Cause(ctx))
	}
}

// settled reports whether a refusal of refused needs no read: another caller has
// already found a successor (returned), or found none within the quiet period
// (refused is returned).
func (s *Source) settled(refused string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.have && s.tokGen == s.gen && s.tok.AccessToken != refused && s.tok.Valid(now) {
		return s.tok, true
	}
	if s.have && s.refusedLocked(refused, now) {
		return s.tok, true
	}
	return Token{}, false
}

// recover is the one shared re-read, rotation and wait for a refused token. It
// runs under the first caller's context values but not its cancellation.
func (s *Source) recover(ctx context.Context, refused string) (Token, error) {
	// A caller may get here just after another flight for the same token ended.
	if tok, done := s.settled(refused); done {
		return tok, nil
	}
	ctx = context.WithoutCancel(ctx)
	tok, err := s.forcedRead(ctx)
	if err != nil || tok.AccessToken != refused {
		return tok, err
	}
	if s.rotator != nil {
		if tok, ok := s.rotateAndWait(ctx, tok); ok {
			return tok, nil
		}
	}
	s.mu.Lock()
	s.refused, s.refusedAt = refused, s.now()
	s.mu.Unlock()
	return tok, nil
}

// rotateAndWait sends the conditional rotation for the published token cur and
// polls the parameter, with growing delays, until it holds another token or the
// rotation wait ends. It reports whether a successor was found.
func (s *Source) rotateAndWait(ctx context.Context, cur Token) (Token, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	provider := cur.Provider
	if provider == "" {
		// An old publisher's value: the refresher's default name is PREFIX/<provider>.
		provider = path.Base(s.name)
	}
	if err := s.rotator.Rotate(ctx, Rotation{Provider: provider, IfToken: Fingerprint(cur.AccessToken)}); err != nil {
		return Token{}, false
	}
	delay := firstPoll
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return Token{}, false
		case <-timer.C:
		}
		tok, err := s.forcedRead(ctx)
		if err == nil && tok.AccessToken != cur.AccessToken {
			return tok, true
		}
		delay = min(2*delay, maxPoll)
		timer.Reset(delay)
	}
}

// forcedRead reads the parameter whatever the cache holds, and caches what it
// read as the current generation's token.
func (s *Source) forcedRead(ctx context.Context) (Token, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tok, err := s.fetch(rctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keepLocked(tok, err, s.gen)
}
