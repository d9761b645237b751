package refresher

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Policy defaults. Why the window is this wide: docs/design.md, "Why 15 minutes".
const (
	DefaultPeriod        = 5 * time.Minute
	defaultConsumerCache = 5 * time.Minute
	minWindow            = 15 * time.Minute
	windowShare          = 0.20
	jitterShare          = 0.10
	maxJitter            = time.Hour
)

// Policy decides when a published token is due for refresh.
type Policy struct {
	// Period is how often the schedule runs the refresher; DefaultPeriod when zero.
	Period time.Duration
	// ConsumerCache is how long consumers may keep using a token they read;
	// defaultConsumerCache (the Parameters and Secrets extension's TTL) when zero.
	ConsumerCache time.Duration
}

// decision is the policy's verdict on one provider's token.
type decision struct {
	Due bool
	// Reason says why, in words fit for the result: "no token", "valid until ...".
	Reason string
	// RefreshAt is when the token becomes due; zero when there is no token.
	RefreshAt time.Time
}

// decide says whether p's published token cur (nil when there is none) is due at now.
func (pol Policy) decide(now time.Time, p registry.Provider, cur *tokens.Token) decision {
	if cur == nil {
		return decision{Due: true, Reason: "no token published"}
	}
	if !cur.Valid(now) {
		return decision{Due: true, Reason: "token expired at " + stamp(cur.ExpiresAt)}
	}
	refreshAt := cur.ExpiresAt.Add(-pol.window(p, cur))
	if p.MaxAge > 0 && !cur.IssuedAt.IsZero() {
		if aged := cur.IssuedAt.Add(p.MaxAge); aged.Before(refreshAt) {
			if !now.Before(aged) {
				return decision{Due: true, Reason: fmt.Sprintf("older than max_age %s", p.MaxAge), RefreshAt: aged}
			}
			refreshAt = aged
		}
	}
	if !now.Before(refreshAt) {
		return decision{Due: true, Reason: "expires at " + stamp(cur.ExpiresAt), RefreshAt: refreshAt}
	}
	return decision{Reason: "valid until " + stamp(cur.ExpiresAt) + ", refresh after " + stamp(refreshAt), RefreshAt: refreshAt}
}

// window is how long before cur expires it is refreshed: refresh_before when set,
// else the larger of the minimum window and 20% of the token's lifetime; plus a
// per-provider jitter of up to 10% of the lifetime (at most an hour).
func (pol Policy) window(p registry.Provider, cur *tokens.Token) time.Duration {
	lifetime := cur.ExpiresAt.Sub(cur.IssuedAt)
	if cur.IssuedAt.IsZero() || lifetime <= 0 {
		lifetime = 0
	}
	w := p.RefreshBefore
	if w == 0 {
		w = max(pol.minWindow(), time.Duration(float64(lifetime)*windowShare))
	}
	return w + jitter(p.Name, cur.IssuedAt, lifetime)
}

// minWindow is the smallest default window: two schedule periods, so that one
// failed or missed run still leaves another, plus the consumers' cache, and never
// less than 15 minutes.
func (pol Policy) minWindow() time.Duration {
	period := pol.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	cache := pol.ConsumerCache
	if cache <= 0 {
		cache = defaultConsumerCache
	}
	return max(minWindow, 2*period+cache)
}

// jitter spreads tokens that were issued together over several runs. It is a pure
// function of the provider and the token, so every run computes the same due time
// and a token never flaps between due and not due. It is strictly positive, so the
// window always exceeds its minimum.
func jitter(name string, issued time.Time, lifetime time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte(issued.UTC().Format(time.RFC3339)))
	frac := float64(h.Sum64()>>11) / (1 << 53) // uniform in [0, 1)
	span := min(time.Duration(float64(lifetime)*jitterShare), maxJitter)
	return time.Duration(frac*float64(span)) + time.Second
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
