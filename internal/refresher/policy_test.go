package refresher

import (
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
	jHour := jitter("ecard", t0, time.Hour)
	day := tok(t0, 24*time.Hour)
	jDay := jitter("ecard", t0, 24*time.Hour)
	year := tok(t0, 365*24*time.Hour)
	jYear := jitter("ecard", t0, 365*24*time.Hour)

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
		// 1 h token: window 15 min plus jitter.
		{"1h just before window", p, hour, t0.Add(45*time.Minute - jHour - time.Second), false},
		{"1h at window", p, hour, t0.Add(45*time.Minute - jHour), true},
		// 24 h token: 20% = 4.8 h.
		{"24h just before window", p, day, t0.Add(24*time.Hour - 288*time.Minute - jDay - time.Second), false},
		{"24h at window", p, day, t0.Add(24*time.Hour - 288*time.Minute - jDay), true},
		// One-year token: 20% = 73 days.
		{"1y just before window", p, year, t0.Add(292*24*time.Hour - jYear - time.Second), false},
		{"1y at window", p, year, t0.Add(292*24*time.Hour - jYear), true},
		// refresh_before overrides the default.
		{"refresh_before not yet", registry.Provider{Name: "ecard", RefreshBefore: 30 * time.Minute}, hour, t0.Add(30*time.Minute - jHour - time.Second), false},
		{"refresh_before reached", registry.Provider{Name: "ecard", RefreshBefore: 30 * time.Minute}, hour, t0.Add(30*time.Minute - jHour), true},
		// max_age refreshes a long-lived token early.
		{"max_age not reached", registry.Provider{Name: "ecard", MaxAge: 720 * time.Hour}, year, t0.Add(720*time.Hour - time.Second), false},
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

func TestJitter(t *testing.T) {
	// Deterministic: the same token gets the same jitter in every run.
	first, again := jitter("x", t0, time.Hour), jitter("x", t0, time.Hour)
	if first != again {
		t.Fatalf("got jitter %s then %s, want the same: deterministic", first, again)
	}
	// Bounded: at most 10% of the lifetime (and an hour), at least a second.
	spread := map[time.Duration]bool{}
	for i := range 200 {
		name := string(rune('a'+i%26)) + string(rune('a'+i/26))
		j := jitter(name, t0, time.Hour)
		if j < time.Second || j > 6*time.Minute+time.Second {
			t.Fatalf("got jitter %s, want 1s to 6m1s", j)
		}
		spread[j/time.Minute] = true
		if jy := jitter(name, t0, 365*24*time.Hour); jy > time.Hour+time.Second {
			t.Fatalf("got one-year jitter %s, want at most an hour", jy)
		}
	}
	// Spread: 200 tokens issued together fall into several different minutes,
	// so they come due in different runs.
	if len(spread) < 5 {
		t.Fatalf("got jitter spread over %d minutes, want at least 5", len(spread))
	}
}
