package refresher

import (
	"fmt"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func tok(issued time.Time, lifetime time.Duration) *tokens.Token {
	return &tokens.Token{AccessToken: "t", IssuedAt: issued, ExpiresAt: issued.Add(lifetime)}
}

func TestPolicyDecide(t *testing.T) {
	var pol Policy
	p := registry.Provider{Name: "ecard"}
	hour := tok(t0, time.Hour)
	day := tok(t0, 24*time.Hour)
	year := tok(t0, 365*24*time.Hour)
	// due is when a token that must be refreshed by limit comes due: its
	// provider's slot, checked on its own in TestSpread.
	due := func(limit time.Duration) time.Duration {
		return pol.spread("ecard", t0, t0.Add(limit)).Sub(t0)
	}
	jHour := 45*time.Minute - due(45*time.Minute-time.Second)
	jDay := 24*time.Hour - 288*time.Minute - due(24*time.Hour-288*time.Minute-time.Second)
	jYear := 292*24*time.Hour - due(292*24*time.Hour-time.Second)
	jBefore := 30*time.Minute - due(30*time.Minute-time.Second)
	jAge := 720*time.Hour - due(720*time.Hour)

	tests := []struct {
		name string
		p    registry.Provider
		cur  *tokens.Token
		now  time.Time
		due  bool
	}{
		{"no token", p, nil, t0, true},
		{"expired", p, hour, t0.Add(time.Hour), true},
		{"fresh 1h", p, hour, t0, false},
		// 1 h token: window 15 min (and a second), due at the provider's slot before that.
		{"1h just before window", p, hour, t0.Add(45*time.Minute - jHour - time.Second), false},
		{"1h at window", p, hour, t0.Add(45*time.Minute - jHour), true},
		// 24 h token: 20% = 4.8 h.
		{"24h just before window", p, day, t0.Add(24*time.Hour - 288*time.Minute - jDay - time.Second), false},
		{"24h at window", p, day, t0.Add(24*time.Hour - 288*time.Minute - jDay), true},
		// One-year token: 20% = 73 days.
		{"1y just before window", p, year, t0.Add(292*24*time.Hour - jYear - time.Second), false},
		{"1y at window", p, year, t0.Add(292*24*time.Hour - jYear), true},
		// refresh_before overrides the default.
		{"refresh_before not yet", registry.Provider{Name: "ecard", RefreshBefore: 30 * time.Minute}, hour, t0.Add(30*time.Minute - jBefore - time.Second), false},
		{"refresh_before reached", registry.Provider{Name: "ecard", RefreshBefore: 30 * time.Minute}, hour, t0.Add(30*time.Minute - jBefore), true},
		// max_age refreshes a long-lived token early, at its slot before max_age.
		{"max_age not reached", registry.Provider{Name: "ecard", MaxAge: 720 * time.Hour}, year, t0.Add(720*time.Hour - jAge - time.Second), false},
		{"max_age slot reached", registry.Provider{Name: "ecard", MaxAge: 720 * time.Hour}, year, t0.Add(720*time.Hour - jAge), true},
		{"max_age reached", registry.Provider{Name: "ecard", MaxAge: 720 * time.Hour}, year, t0.Add(720 * time.Hour), true},
		{"max_age longer than lifetime is moot", registry.Provider{Name: "ecard", MaxAge: 48 * time.Hour}, hour, t0.Add(10 * time.Minute), false},
		{"no issued_at", p, &tokens.Token{AccessToken: "t", ExpiresAt: t0.Add(time.Hour)}, t0.Add(44 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pol.decide(tt.now, tt.p, tt.cur)
			if d.Due != tt.due {
				t.Fatalf("Due = %v (%s), want %v", d.Due, d.Reason, tt.due)
			}
			if d.Reason == "" {
				t.Fatal("got no reason, want one")
			}
		})
	}
}

func TestPolicyWindowExceedsFloor(t *testing.T) {
	// The default window must exceed two schedule periods plus the consumers'
	// 5-minute cache, for every lifetime and every provider.
	tests := []struct {
		period time.Duration
		floor  time.Duration
	}{
		{5 * time.Minute, 15 * time.Minute},
		{time.Minute, 15 * time.Minute},
		{10 * time.Minute, 25 * time.Minute},
	}
	for _, tt := range tests {
		pol := Policy{Period: tt.period}
		if got := pol.minWindow(); got != tt.floor {
			t.Errorf("period %s: MinWindow = %s, want %s", tt.period, got, tt.floor)
		}
		for _, life := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 365 * 24 * time.Hour} {
			for _, name := range []string{"a", "b", "ecard", "opencard"} {
				w := pol.window(registry.Provider{Name: name}, tok(t0, life))
				if w <= tt.floor {
					t.Errorf("period %s, lifetime %s, %s: got window %s, want more than %s", tt.period, life, name, w, tt.floor)
				}
			}
		}
	}
}

func TestSpread(t *testing.T) {
	pol := Policy{}
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("partner-%04d", i)
	}
	lifetimes := []time.Duration{time.Hour, 24 * time.Hour, 365 * 24 * time.Hour}
	for _, life := range lifetimes {
		t.Run(life.String(), func(t *testing.T) {
			runs := map[time.Time]int{} // due tokens issued together, by the run that finds them due
			for _, name := range names {
				p := registry.Provider{Name: name}
				cur := tok(t0, life)
				limit := cur.ExpiresAt.Add(-pol.window(p, cur))
				d := pol.decide(t0, p, cur)
				// Bounded: never after the window, never in the run that published it.
				if d.RefreshAt.After(limit) || d.RefreshAt.Before(t0.Add(DefaultPeriod)) {
					t.Fatalf("%s: refresh at %s, want within [%s, %s]", name, d.RefreshAt, t0.Add(DefaultPeriod), limit)
				}
				// Deterministic: the same token gets the same due time in every run.
				if again := pol.decide(t0.Add(time.Minute), p, cur); !again.RefreshAt.Equal(d.RefreshAt) {
					t.Fatalf("%s: refresh at %s, then %s", name, d.RefreshAt, again.RefreshAt)
				}
				// Bounded and stable: none of its successors comes due before half
				// its cycle or after its window, and once one comes due at the
				// provider's slot, each after it does too, one cycle later, whichever
				// run within a period published it.
				for _, late := range []time.Duration{0, time.Minute, DefaultPeriod - time.Second} {
					due, onSlot := d.RefreshAt, false
					for i := range 6 {
						next := tok(due.Add(late), life)
						nextLimit := next.ExpiresAt.Add(-pol.window(p, next))
						cycle := nextLimit.Sub(next.IssuedAt).Truncate(time.Minute)
						nextDue := pol.decide(next.IssuedAt, p, next).RefreshAt
						if nextDue.Before(next.IssuedAt.Add(cycle/2)) || nextDue.After(nextLimit) {
							t.Fatalf("%s: token %d due at %s, want within [%s, %s]", name, i+2, nextDue, next.IssuedAt.Add(cycle/2), nextLimit)
						}
						slotted := nextDue.Equal(due.Add(cycle))
						if onSlot && !slotted && life < 365*24*time.Hour {
							t.Fatalf("%s, published %s late: token %d due at %s, want on its slot %s", name, late, i+2, nextDue, due.Add(cycle))
						}
						onSlot = onSlot || slotted
						due = nextDue
					}
				}
				runs[d.RefreshAt.Truncate(DefaultPeriod)]++
			}
			// Spread: 1,000 tokens issued together come due over the second half of
			// the cycle, no run with more than three times its even share.
			cycle := (life - max(15*time.Minute, life/5) - time.Second).Truncate(time.Minute)
			even := float64(len(names)) * float64(DefaultPeriod) / float64(cycle)
			most := 0
			for _, n := range runs {
				most = max(most, n)
			}
			if float64(most) > 3*max(even, 10) {
				t.Errorf("most tokens due in one run = %d, want at most 3 × %.1f", most, max(even, 10))
			}
		})
	}
}
