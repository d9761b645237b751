package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/queue"
	"github.com/token-refresher/token-refresher/internal/state"
)

// TestRotationWaitsAcrossRuns: a rotation larger than one run's write budget
// reaches what it can, reports the rest pending with the rotation as the reason
// (no failure: the invocation succeeds), and keeps the rotation in the run record;
// the scheduled runs after it rotate the rest at the budget, each run naming every
// provider still waiting, until every provider's token was replaced exactly once,
// and then an idle run ends after the record again. A provider none of it names
// is left alone.
func TestRotationWaitsAcrossRuns(t *testing.T) {
	tests := []struct {
		name      string
		providers []string // the rotation's; nil: all
		turns     int      // writes a run's budget allows before its deadline
		wantRuns  int      // runs that leave something pending, the rotation's included
	}{
		{"all, two a run", nil, 2, 2},
		{"all, one a run", nil, 1, 4},
		{"named, one a run", []string{"ecard", "booking", "opencard"}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			now := t0
			w.srv.SetClock(func() time.Time { return now })
			r := w.refresher()
			r.Now = func() time.Time { return now }
			var logs, metrics bytes.Buffer
			r.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			r.Metrics = &Metrics{Out: &metrics, Namespace: "test"}
			if _, err := r.Run(context.Background(), Request{Action: ActionRefresh, Trigger: TriggerSchedule}); err != nil {
				t.Fatal(err)
			}
			before := map[string]int{}
			for _, d := range oauthtest.Dialects() {
				before[string(d)] = w.srv.Stats(string(d)).Requests
			}
			rotated := slices.Clone(tt.providers)
			if rotated == nil {
				for _, d := range oauthtest.Dialects() {
					rotated = append(rotated, string(d))
				}
			}
			healthWrites := w.state.healthWrites

			now = now.Add(time.Minute)
			asked := now
			req := Request{Action: ActionRotate, Providers: tt.providers}
			if req.Providers == nil {
				req.Providers = []string{"*"}
			}
			runs := 0
			for run := 0; ; run++ {
				if run > 10 {
					t.Fatal("the rotation did not finish in ten runs")
				}
				r.Writes = newSlots(nil, time.Second, time.Duration(tt.turns)*time.Second)
				logs.Reset()
				metrics.Reset()
				res, err := r.Run(context.Background(), req)
				if strings.Contains(metrics.String(), `"`+metricFailed+`":1`) {
					t.Errorf("run %d: got a %s metric of 1, want none: a provider waiting is no failure", run, metricFailed)
				}
				logged := map[string]string{} // the reason of each provider's pending line
				for line := range strings.Lines(logs.String()) {
					var l struct{ Msg, Provider, Status, Reason string }
					if json.Unmarshal([]byte(line), &l) == nil && l.Status == string(StatusPending) && l.Msg == "token rotation waiting for a later run" {
						logged[l.Provider] = l.Reason
					}
				}
				if err != nil {
					t.Fatalf("run %d: got %v, want no error: a rotation waiting is not a failure", run, err)
				}
				c := res.Counts()
				if c[StatusRefreshed] > tt.turns {
					t.Fatalf("run %d: got %d refreshed, want at most %d: the budget's", run, c[StatusRefreshed], tt.turns)
				}
				if res.Idle {
					if run != runs+1 {
						t.Fatalf("run %d: got an idle run, want one only after the run that rotated the last provider", run)
					}
					break
				}
				for _, o := range res.Results {
					if o.Status != StatusPending {
						continue
					}
					if want := waitingReason(asked); o.Reason != want {
						t.Errorf("run %d: got %s pending with %q, want %q", run, o.Provider, o.Reason, want)
					}
					if logged[o.Provider] != o.Reason {
						t.Errorf("run %d: got %s's log line with reason %q, want %q", run, o.Provider, logged[o.Provider], o.Reason)
					}
					if o.ExpiresAt == "" {
						t.Errorf("run %d: got %s pending without the expiry of the token it still has", run, o.Provider)
					}
				}
				if c[StatusPending] > 0 {
					runs++
				} else if len(w.state.run.Rotations) != 0 {
					t.Fatalf("run %d: nothing pending, but the record keeps %+v", run, w.state.run.Rotations)
				}
				if c[StatusPending] == 0 && res.NextDue == "" {
					t.Fatalf("run %d: the rotation finished, but the record has no next due time", run)
				}
				now = now.Add(time.Minute) // well before any token rotated comes due on its own
				req = Request{Action: ActionRefresh, Trigger: TriggerSchedule}
			}
			if runs != tt.wantRuns {
				t.Errorf("got %d runs with providers pending, want %d", runs, tt.wantRuns)
			}
			for _, d := range oauthtest.Dialects() {
				want := 0
				if slices.Contains(rotated, string(d)) {
					want = 1
				}
				if got := w.srv.Stats(string(d)).Requests - before[string(d)]; got != want {
					t.Errorf("got %d token requests for %s after the rotation, want %d", got, d, want)
				}
			}
			if w.state.healthWrites != healthWrites {
				t.Errorf("got %d health writes, want none: waiting is not a failed attempt", w.state.healthWrites-healthWrites)
			}
		})
	}
}

// TestRotationWaitingNotKept: where the rotation cannot be kept for a later run,
// its providers not reached fail with "write budget" as before, and say that it
// was not kept; a rotation of all asked again while one waits replaces it.
func TestRotationWaitingNotKept(t *testing.T) {
	t.Run("run record not written", func(t *testing.T) {
		w := newWorld(t)
		r := w.refresher()
		r.State = &failingPutRun{w.state}
		r.Writes = newSlots(nil, time.Second, 2*time.Second)
		res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("got %v, want ErrFailed", err)
		}
		for _, o := range res.Results {
			if o.Status == StatusFailed && !(strings.Contains(o.Error, "write budget") && strings.Contains(o.Error, "could not be kept")) {
				t.Errorf("got %s failed with %q, want the write budget and that it was not kept", o.Provider, o.Error)
			}
		}
		if c := res.Counts(); c[StatusFailed] != 3 || c[StatusPending] != 0 {
			t.Errorf("got counts %v, want 3 failed and none pending", c)
		}
	})
	t.Run("asked again", func(t *testing.T) {
		w := newWorld(t)
		now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		w.srv.SetClock(func() time.Time { return now })
		r := w.refresher()
		r.Now = func() time.Time { return now }
		for range 2 {
			r.Writes = newSlots(nil, time.Second, time.Second)
			if _, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}}); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
		}
		if got := w.state.run.Rotations; len(got) != 1 || !got[0].All || !got[0].At.Equal(now.Add(-time.Minute)) {
			t.Errorf("got rotations %+v, want the later rotation of all only", got)
		}
	})
}

// failingPutRun is a StateStore that cannot write the run record.
type failingPutRun struct{ *fakeState }

func (f *failingPutRun) PutRun(context.Context, state.Run) error {
	return errors.New("ThrottlingException")
}

// TestFanOutWorkerBudgetReturnsUnreachedJobs: a worker whose batch the write
// budget cannot finish before its deadline returns the jobs it did not reach in
// BatchItemFailures, with "write budget" as their reason, so the queue delivers
// them again and no rotation job is lost; the invocation succeeds.
func TestFanOutWorkerBudgetReturnsUnreachedJobs(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	r.Queue = &fakeQueue{}
	r.Writes = newSlots(nil, time.Second, 2*time.Second)
	now := time.Now()
	var msgs []queue.Message
	for _, d := range oauthtest.Dialects() {
		var v int64
		msgs = append(msgs, jobMessage(t, Job{Provider: string(d), PlannedAt: now, Rotate: true, Version: &v}))
	}
	res, err := handle(t, r, delivery(t, "m", msgs))
	if err != nil {
		t.Fatalf("a worker's invocation: got err %v, want nil", err)
	}
	var want []string
	for i, o := range res.Results {
		switch {
		case o.Status == StatusRefreshed:
		case o.Status == StatusFailed && strings.Contains(o.Error, "write budget"):
			want = append(want, fmt.Sprintf("m%d", i))
		default:
			t.Errorf("got %s %s (%s%s), want refreshed or failed for the write budget", o.Provider, o.Status, o.Reason, o.Error)
		}
	}
	slices.Sort(want)
	if got := failedMessages(res); len(want) != 3 || !slices.Equal(got, want) {
		t.Fatalf("got batch item failures %v, want the 3 jobs not reached %v", got, want)
	}
}
