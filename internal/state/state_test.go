package state

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ok := Attempt{At: t0, Published: true, Valid: true}
	fallback := Attempt{At: t0, Published: true, Degraded: true, Valid: true}
	failedValid := Attempt{At: t0, Valid: true, Error: "token endpoint answered 503"}
	failedNone := Attempt{At: t0, Error: "token endpoint answered 401"}
	warned := Attempt{At: t0, Published: true, Valid: true, Warning: "the client certificate CN=c expires soon"}
	tests := []struct {
		name      string
		prev      Health
		a         Attempt
		want      Condition
		failures  int
		wantWrite bool
	}{
		{"never failed, success: no record", Health{}, ok, Healthy, 0, false},
		{"first failure, token still valid", Health{}, failedValid, Degraded, 1, true},
		{"first failure, no token", Health{}, failedNone, Failing, 1, true},
		{"previous secret used", Health{}, fallback, Degraded, 0, true},
		{"failing again counts", Health{State: Failing, ConsecutiveFailures: 3, LastError: "x"}, failedNone, Failing, 4, true},
		{"recovery", Health{State: Failing, ConsecutiveFailures: 4}, ok, Healthy, 0, true},
		{"healthy stays healthy", Health{State: Healthy, Since: t0.Add(-time.Hour)}, ok, Healthy, 0, false},
		{"published with a warning", Health{}, warned, Degraded, 0, true},
		{"a warning gone is a recovery", Health{State: Degraded, Reason: warned.Warning}, ok, Healthy, 0, true},
		{"degraded on the previous secret stays", Health{State: Degraded, Reason: "running on the previous client secret (AWSPREVIOUS): the current one was refused"}, fallback, Degraded, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, write := Next(tt.prev, "p", tt.a)
			if got.State != tt.want || got.ConsecutiveFailures != tt.failures || write != tt.wantWrite || got.Provider != "p" {
				t.Fatalf("Next = %+v, write %v; want provider %q, state %s, %d failures, write %v", got, write, "p", tt.want, tt.failures, tt.wantWrite)
			}
			if got.State != tt.prev.State && !got.Since.Equal(t0) {
				t.Errorf("state changed: got Since %s, want %s", got.Since, t0)
			}
			if tt.a.Error != "" && (got.LastError != tt.a.Error || !got.LastFailure.Equal(t0)) {
				t.Errorf("got LastError %q at %s, want %q at %s", got.LastError, got.LastFailure, tt.a.Error, t0)
			}
		})
	}
	long, _ := Next(Health{}, "p", Attempt{At: t0, Error: strings.Repeat("é", 1000)})
	if len(long.LastError) > maxErrorLen+len("…") {
		t.Fatalf("got a reason of %d bytes, want at most %d", len(long.LastError), maxErrorLen+len("…"))
	}
}

func TestRunCurrent(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := Run{Registry: "fp", NextDue: now.Add(time.Minute), FullRead: now.Add(-30 * time.Minute)}
	if !r.Current(now, "fp", time.Hour) {
		t.Fatal("a current record is not current")
	}
	for name, bad := range map[string]Run{
		"other registry":  {Registry: "other", NextDue: r.NextDue, FullRead: r.FullRead},
		"due":             {Registry: "fp", NextDue: now, FullRead: r.FullRead},
		"no due time":     {Registry: "fp", FullRead: r.FullRead},
		"stale":           {Registry: "fp", NextDue: r.NextDue, FullRead: now.Add(-time.Hour)},
		"from the future": {Registry: "fp", NextDue: r.NextDue, FullRead: now.Add(time.Minute)},
		"rotation waiting": {Registry: "fp", NextDue: r.NextDue, FullRead: r.FullRead,
			Rotations: []Rotation{{At: now.Add(-time.Minute), All: true}}},
	} {
		if bad.Current(now, "fp", time.Hour) {
			t.Errorf("%s: got current, want not current", name)
		}
	}
}

func TestMergeKeepsTheEarlier(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	a := Run{Registry: "fp", NextDue: t0.Add(time.Hour), MinExpiry: t0.Add(2 * time.Hour), FullRead: t0}
	b := Run{Registry: "fp", NextDue: t0.Add(30 * time.Minute), MinExpiry: t0.Add(3 * time.Hour), FullRead: t0.Add(time.Minute)}
	m := merge(a, b)
	if !m.NextDue.Equal(b.NextDue) || !m.MinExpiry.Equal(a.MinExpiry) || !m.FullRead.Equal(a.FullRead) || m.Registry != "fp" {
		t.Fatalf("merge = %+v, want next due %s, min expiry %s, full read %s, registry %q", m, b.NextDue, a.MinExpiry, a.FullRead, "fp")
	}
	if m := merge(a, Run{Registry: "fp", FullRead: t0}); !m.NextDue.IsZero() {
		t.Fatalf("got next due %s, want zero: a record that says read everything was lost", m.NextDue)
	}
	if m := merge(a, Run{Registry: "other", NextDue: a.NextDue, FullRead: t0}); m.Registry != "" {
		t.Fatalf("got registry %q, want none: records of two registries merged into a current one", m.Registry)
	}
}

// TestRotation: a rotation covers the providers it names, or all; it is done for a
// token issued at or after its time, cut to the second as issued_at is, and a
// merge of two records keeps the rotations of both.
func TestRotation(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name     string
		rot      Rotation
		provider string
		issued   time.Time
		covers   bool
		done     bool
	}{
		{"all, issued before", Rotation{At: at, All: true}, "a", at.Add(-time.Second), true, false},
		{"all, issued in its second", Rotation{At: at, All: true}, "a", at.Truncate(time.Second), true, true},
		{"all, issued after", Rotation{At: at, All: true}, "a", at.Add(time.Minute), true, true},
		{"named, another provider", Rotation{At: at, Providers: []string{"b"}}, "a", at.Add(-time.Hour), false, false},
		{"named, this provider", Rotation{At: at, Providers: []string{"a", "b"}}, "a", at.Add(-time.Hour), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rot.Covers(tt.provider); got != tt.covers {
				t.Errorf("got covers %t, want %t", got, tt.covers)
			}
			if got := tt.rot.Done(tt.issued); got != tt.done {
				t.Errorf("got done %t, want %t", got, tt.done)
			}
		})
	}
	a := Run{Registry: "fp", FullRead: at, Rotations: []Rotation{{At: at, All: true}}}
	b := Run{Registry: "fp", FullRead: at, Rotations: []Rotation{{At: at, All: true}, {At: at, Providers: []string{"x"}}}}
	if m := merge(a, b); len(m.Rotations) != 2 {
		t.Errorf("got %d rotations after a merge, want 2: each one once", len(m.Rotations))
	}
	if m := merge(b, Run{Registry: "fp", FullRead: at}); len(m.Rotations) != 2 {
		t.Errorf("got %d rotations after a merge with a record of none, want 2: a waiting rotation was lost", len(m.Rotations))
	}
}
