package refresher

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestSpreadAfterRotateAll runs the policy over simulated time, with a fake clock
// and no AWS: N providers, all rotated at once, then the schedule every period,
// each run writing at most budget × period tokens, paced at the budget. After the
// rotation has drained, no run needs more writes than its share of the budget,
// once a cycle has passed each needs about its even share N × period / cycle, and
// no token is ever refreshed late or lets a consumer see it expired.
func TestSpreadAfterRotateAll(t *testing.T) {
	tests := []struct {
		n      int
		life   time.Duration
		budget float64 // writes a second
		hours  int     // simulated
	}{
		{1000, time.Hour, 3, 12},
		{1000, time.Hour, 1, 12}, // the rotation drains over several runs
		{1000, 24 * time.Hour, 3, 96},
		{10000, time.Hour, 10, 6},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("N=%d/%s/Q=%g", tt.n, tt.life, tt.budget), func(t *testing.T) {
			s := simulate(tt.n, tt.life, tt.budget, time.Duration(tt.hours)*time.Hour)
			if len(s.late) > 0 {
				t.Fatalf("%d refreshes late, first: %s", len(s.late), s.late[0])
			}
			if s.drained < 0 {
				t.Fatalf("the rotation of all %d never drained", tt.n)
			}
			share := int(tt.budget * DefaultPeriod.Seconds())
			cycle := (tt.life - max(minWindow, tt.life/5) - time.Second).Truncate(time.Minute)
			even := float64(tt.n) * float64(DefaultPeriod) / float64(cycle)
			bound := int(math.Ceil(even + 4*math.Sqrt(even)))    // four standard deviations of a binomial
			steady := s.drained + 2*int(cycle/DefaultPeriod) + 1 // fallen into the providers' slots
			for k, n := range s.writes {
				if k <= s.drained {
					continue
				}
				if s.backlog[k] > 0 {
					t.Errorf("run %d after the drain left %d due tokens for later", k, s.backlog[k])
				}
				if n > share {
					t.Errorf("run %d after the drain wrote %d, want at most its share %d", k, n, share)
				}
				if k > steady && n > bound {
					t.Errorf("run %d in the steady state wrote %d, want at most %d (even share %.1f)", k, n, bound, even)
				}
			}
			t.Logf("drained in %d runs; steady: most writes in a run %d, even share %.1f, bound %d, budget share %d; %.2f writes/s",
				s.drained+1, s.most(steady), even, bound, share, s.rate(steady))
		})
	}
}

// simulation is what simulate saw, run by run.
type simulation struct {
	writes  []int         // tokens written by each run
	backlog []int         // due tokens each run left for the next, for want of budget
	drained int           // the first run after which nothing was left over; -1 if none
	drain   time.Duration // from the rotation to its last write, the tokens due meanwhile included
	late    []string      // refreshes that came too late, and why
	period  time.Duration
}

func (s simulation) most(from int) int {
	m := 0
	for _, n := range s.writes[min(from, len(s.writes)):] {
		m = max(m, n)
	}
	return m
}

func (s simulation) rate(from int) float64 {
	total := 0
	for _, n := range s.writes[min(from, len(s.writes)):] {
		total += n
	}
	runs := len(s.writes) - min(from, len(s.writes))
	if runs == 0 {
		return 0
	}
	return float64(total) / (float64(runs) * s.period.Seconds())
}

// simulate rotates n providers' tokens of lifetime life at once and then runs the
// default policy every period for span, each run writing what is due, oldest due
// first, at most budget × period of them, one every 1/budget seconds.
func simulate(n int, life time.Duration, budget float64, span time.Duration) simulation {
	return simulateRuns(n, life, budget, int(budget*DefaultPeriod.Seconds()), span, 0)
}

// simulateRuns is simulate with at most perRun writes a run: budget × the time a
// run may write; it gives up when the rotation has not drained by drainBy (0: no
// limit). A token's due time is the policy's at its publication, as the
// parameter's metadata records it; a token is due in a run at or after it.
func simulateRuns(n int, life time.Duration, budget float64, perRun int, span, drainBy time.Duration) simulation {
	pol := Policy{}
	period := pol.period()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	providers := make([]registry.Provider, n)
	for i := range providers {
		providers[i] = registry.Provider{Name: fmt.Sprintf("partner-%06d", i)}
	}
	published := make([]*tokens.Token, n)
	dueAt := make([]time.Time, n)
	backlog := make([]int, 0, n) // due, not yet written: the rotation at first
	for i := range providers {
		backlog = append(backlog, i)
	}
	rotating := make([]bool, n)
	for i := range rotating {
		rotating[i] = true
	}
	queued := make([]bool, n)
	gap := time.Duration(float64(time.Second) / budget)
	s := simulation{drained: -1, period: period}
	for k := 0; time.Duration(k)*period < span; k++ {
		if drainBy > 0 && s.drained < 0 && time.Duration(k)*period > drainBy {
			break
		}
		now := start.Add(time.Duration(k) * period)
		for i := range queued {
			queued[i] = false
		}
		for _, i := range backlog {
			queued[i] = true
		}
		for i := range providers {
			if !queued[i] && !now.Before(dueAt[i]) {
				if d := pol.decide(now, providers[i], published[i]); !d.Due {
					s.late = append(s.late, fmt.Sprintf("%s due at %s by its metadata, not due at %s: %s", providers[i].Name, dueAt[i], now, d.Reason))
				}
				backlog = append(backlog, i)
			}
		}
		written := min(perRun, len(backlog))
		for w, i := range backlog[:written] {
			at := now.Add(time.Duration(w) * gap)
			// The run that refreshes a token finds it with more than the window's
			// floor less a period left, and publishes the new one with more than the
			// consumers' cache left ("Why 15 minutes" in docs/design.md).
			if cur := published[i]; !rotating[i] {
				found, left := cur.ExpiresAt.Sub(now), cur.ExpiresAt.Sub(at)
				if found <= pol.minWindow()-period || left <= pol.consumerCache() {
					s.late = append(s.late, fmt.Sprintf("%s found due with %s left, published with %s left", providers[i].Name, found, left))
				}
			}
			published[i] = &tokens.Token{AccessToken: "t", IssuedAt: at, ExpiresAt: at.Add(life)}
			dueAt[i] = pol.decide(at, providers[i], published[i]).RefreshAt
			rotating[i] = false
		}
		backlog = backlog[written:]
		s.writes = append(s.writes, written)
		s.backlog = append(s.backlog, len(backlog))
		if len(backlog) == 0 && s.drained < 0 {
			s.drained = k
			s.drain = now.Add(time.Duration(written) * gap).Sub(start)
		}
	}
	return s
}
