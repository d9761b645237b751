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
	limit := cur.ExpiresAt.Add(-pol.window(p, cur))
	aged := false
	if p.MaxAge > 0 && !cur.IssuedAt.IsZero() {
		if at := cur.IssuedAt.Add(p.MaxAge); at.Before(limit) {
			limit, aged = at, true
		}
	}
	refreshAt := pol.spread(p.Name, cur.IssuedAt, limit)
	switch {
	case now.Before(refreshAt):
		return decision{Reason: "valid until " + stamp(cur.ExpiresAt) + ", refresh after " + stamp(refreshAt), RefreshAt: refreshAt}
	case aged && !now.Before(limit):
		return decision{Due: true, Reason: fmt.Sprintf("older than max_age %s", p.MaxAge), RefreshAt: refreshAt}
	case aged:
		return decision{Due: true, Reason: fmt.Sprintf("max_age %s reached at %s", p.MaxAge, stamp(limit)), RefreshAt: refreshAt}
	}
	return decision{Due: true, Reason: "expires at " + stamp(cur.ExpiresAt), RefreshAt: refreshAt}
}

// window is how long before cur expires it is refreshed at the latest:
// refresh_before when set, else the larger of the minimum window and 20% of the
// token's lifetime; plus one second, so that it always exceeds its floor.
func (pol Policy) window(p registry.Provider, cur *tokens.Token) time.Duration {
	lifetime := cur.ExpiresAt.Sub(cur.IssuedAt)
	if cur.IssuedAt.IsZero() || lifetime <= 0 {
		lifetime = 0
	}
	w := p.RefreshBefore
	if w == 0 {
		w = max(pol.minWindow(), time.Duration(float64(lifetime)*windowShare))
	}
	return w + time.Second
}

// minWindow is the smallest default window: two schedule periods, so that one
// failed or missed run still leaves another, plus the consumers' cache, and never
// less than 15 minutes.
func (pol Policy) minWindow() time.Duration {
	return max(minWindow, 2*pol.period()+pol.consumerCache())
}

func (pol Policy) period() time.Duration {
	if pol.Period <= 0 {
		return DefaultPeriod
	}
	return pol.Period
}

func (pol Policy) consumerCache() time.Duration {
	if pol.ConsumerCache <= 0 {
		return defaultConsumerCache
	}
	return pol.ConsumerCache
}

// spread says when a token issued at issued, which must be refreshed by limit,
// comes due: at its provider's slot, the last one at or before limit. A
// provider's slots recur every cycle (limit − issued, cut to whole minutes, so that a token that
// is refreshed at its slot has its next slot before its next limit) at an offset
// within the cycle derived from the provider's name alone, counted from the Unix
// epoch. So the due times of N providers are spread evenly over the cycle
// whenever their tokens were issued: tokens issued together (a first deploy, a
// rotation of all) come due in different runs, each at most one cycle early and
// once, and from then on each provider is refreshed once a cycle at its own
// offset, which a late refresh does not move. Every run computes the same time
// for the same token, so a token never flaps between due and not due.
//
// A token lives at least half its cycle (and a period) before it comes due, so
// that spreading costs a provider at most one extra token request, once, after
// tokens were issued together. A token whose slot comes sooner than that comes
// due at a time drawn from its provider and issue time, from then until its
// successor can come due at the provider's next slot, so that these too are
// spread and the successor is on the slot (when there is no such time, until
// limit, and a later successor is). A cycle shorter than two periods has nothing to
// spread over but runs: the token comes due at limit.
func (pol Policy) spread(name string, issued, limit time.Time) time.Time {
	period := pol.period()
	cycle := limit.Sub(issued).Truncate(time.Minute)
	if issued.IsZero() || cycle < 2*period {
		return limit
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	offset := time.Duration(h.Sum64()%uint64(cycle/time.Second)) * time.Second
	// phase: how far limit is past its provider's last slot, in [0, cycle).
	phase := (time.Duration(limit.UnixNano()) - offset) % cycle
	if phase < 0 {
		phase += cycle
	}
	at := limit.Add(-phase)
	lo := issued.Add(max(period, cycle/2))
	if !at.Before(lo) {
		return at
	}
	// Sooner than the slot after next less half a cycle and a period, so that the
	// successor comes due at that slot; when there is no such time, anywhere to limit.
	hi := at.Add(cycle/2 - period)
	if !hi.After(lo) {
		hi = limit
	}
	h.Write([]byte(issued.UTC().Format(time.RFC3339Nano)))
	frac := float64(h.Sum64()>>11) / (1 << 53) // uniform in [0, 1)
	return lo.Add(time.Duration(frac * float64(hi.Sub(lo))))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
