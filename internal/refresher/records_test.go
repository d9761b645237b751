package refresher

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/state"
)

var schedule = Request{Action: ActionRefresh, Trigger: TriggerSchedule}

// TestIdleRunReadsOnlyTheRunRecord: once a run has published every token, a
// scheduled run before the next token is due reads the run record and nothing
// else (no token read, no secret read, no provider request, no write), and still
// reports the soonest expiry for the expiry alarm.
func TestIdleRunReadsOnlyTheRunRecord(t *testing.T) {
	w := newWorld(t)
	var metrics bytes.Buffer
	r := w.refresher()
	r.Metrics = &Metrics{Out: &metrics, Namespace: "NS"}
	if _, err := r.Run(context.Background(), schedule); err != nil {
		t.Fatal(err)
	}
	currents, reads, requests, writes := w.store.currents, w.secrets.reads, w.srv.TotalRequests(), w.store.writes
	runWrites, healthReads := w.state.runWrites, w.state.healthReads
	metrics.Reset()
	for range 3 {
		res, err := r.Run(context.Background(), schedule)
		if err != nil || !res.Idle || len(res.Results) != 0 || res.NextDue == "" {
			t.Fatalf("idle run: got err %v, idle %v, %d results, next due %q; want nil, true, 0, a next due time", err, res.Idle, len(res.Results), res.NextDue)
		}
	}
	if w.store.currents != currents || w.secrets.reads != reads || w.srv.TotalRequests() != requests ||
		w.store.writes != writes || w.state.runWrites != runWrites || w.state.healthReads != healthReads {
		t.Fatalf("idle runs: got %d token reads, %d secret reads, %d token requests, %d token writes, %d run record writes, %d health reads; want 0 of each",
			w.store.currents-currents, w.secrets.reads-reads, w.srv.TotalRequests()-requests, w.store.writes-writes,
			w.state.runWrites-runWrites, w.state.healthReads-healthReads)
	}
	if n := strings.Count(metrics.String(), `"SecondsToExpiry"`); n < 3 {
		t.Fatalf("idle runs reported the soonest expiry: got %d times, want at least 3:\n%s", n, metrics.String())
	}
}

// TestIdleRunFallsBack: every condition that could hide a due token makes a
// scheduled run read every token.
func TestIdleRunFallsBack(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world, r *Refresher)
		req   Request
	}{
		{"no record", func(w *world, r *Refresher) { w.state.run = state.Run{} }, schedule},
		{"unreadable record", func(w *world, r *Refresher) { w.state.runErr = errors.New("throttled") }, schedule},
		{"registry changed", func(w *world, r *Refresher) { w.state.run.Registry = "another" }, schedule},
		{"settings changed", func(w *world, r *Refresher) { r.Policy.Period = time.Hour }, schedule},
		{"a token is due", func(w *world, r *Refresher) { w.state.run.NextDue = time.Now().Add(-time.Second) }, schedule},
		{"last full read over an hour ago", func(w *world, r *Refresher) { w.state.run.FullRead = time.Now().Add(-61 * time.Minute) }, schedule},
		{"full read in the future", func(w *world, r *Refresher) { w.state.run.FullRead = time.Now().Add(time.Hour) }, schedule},
		{"a manual refresh", func(w *world, r *Refresher) {}, Request{Action: ActionRefresh, Trigger: triggerManual}},
		{"a rotation", func(w *world, r *Refresher) {}, Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: triggerManual}},
		{"a secret change", func(w *world, r *Refresher) {}, Request{Action: ActionRotate, Providers: []string{"ecard"}, Trigger: triggerSecretChange}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.refresher()
			if _, err := r.Run(context.Background(), schedule); err != nil {
				t.Fatal(err)
			}
			tt.setup(w, r)
			before := w.store.currents
			res, err := r.Run(context.Background(), tt.req)
			if err != nil || res.Idle || w.store.currents != before+1 || len(res.Results) == 0 {
				t.Fatalf("got err %v, idle %v, %d results, %d token reads; want nil, false, some results, 1 token read", err, res.Idle, len(res.Results), w.store.currents-before)
			}
		})
	}
}

// TestRunRecordNeedsEveryTokenValid: a run that leaves a provider failing or
// without a token records no next due time, so the next run reads everything.
func TestRunRecordNeedsEveryTokenValid(t *testing.T) {
	// The record holds the earliest expiry of the published tokens: a later one
	// would let runs end early after a token had expired.
	ok := newWorld(t)
	if _, err := ok.refresher().Run(context.Background(), schedule); err != nil {
		t.Fatal(err)
	}
	var earliest time.Time
	for _, tok := range ok.store.tokens {
		if earliest.IsZero() || tok.ExpiresAt.Before(earliest) {
			earliest = tok.ExpiresAt
		}
	}
	if got := ok.state.run.MinExpiry; !got.Equal(earliest) {
		t.Errorf("record's earliest expiry: got %s, want %s", got, earliest)
	}

	w := newWorld(t)
	w.srv.SetFault("booking", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	res, err := w.refresher().Run(context.Background(), schedule)
	if err == nil || res.NextDue != "" || !w.state.run.NextDue.IsZero() || w.state.runWrites != 1 {
		t.Fatalf("with a failing provider: got err %v, next due %q, record next due %s, %d run record writes; want an error, no next due time, 1 write", err, res.NextDue, w.state.run.NextDue, w.state.runWrites)
	}
	before := w.store.currents
	if _, err := w.refresher().Run(context.Background(), schedule); err == nil || w.store.currents != before+1 {
		t.Fatalf("the run after a failure: got err %v, %d token reads, want an error (booking still fails) and 1", err, w.store.currents-before)
	}
}

// TestHealthTransitions: each provider's recorded health follows its attempts,
// healthy → degraded → failing → healthy, with one write per change and none
// for a provider that never failed.
func TestHealthTransitions(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	rotate := Request{Action: ActionRotate, Providers: []string{"cardlytics"}, Trigger: triggerManual}
	health := func() state.Health { return w.state.health["cardlytics"] }

	if _, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	if w.state.healthWrites != 0 {
		t.Fatalf("health writes for providers that never failed: got %d, want 0", w.state.healthWrites)
	}
	// A failed refresh with a valid token left: degraded.
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.ServerError})
	r.Run(context.Background(), rotate)
	if h := health(); h.State != state.Degraded || h.ConsecutiveFailures != 1 || !strings.Contains(h.LastError, "500") {
		t.Fatalf("after a failure: got %+v, want %s with 1 failure and a 500 error", h, state.Degraded)
	}
	// The token expires while refreshes keep failing: failing.
	tok := w.store.tokens[param("cardlytics")]
	tok.ExpiresAt = time.Now().Add(-time.Minute)
	w.store.tokens[param("cardlytics")] = tok
	r.Run(context.Background(), rotate)
	if h := health(); h.State != state.Failing || h.ConsecutiveFailures != 2 {
		t.Fatalf("after the token expired: got %+v, want %s with 2 failures", h, state.Failing)
	}
	writes := w.state.healthWrites
	// The provider answers again: healthy, failures kept for the record.
	w.srv.SetFault("cardlytics", oauthtest.Fault{})
	if _, err := r.Run(context.Background(), rotate); err != nil {
		t.Fatal(err)
	}
	h := health()
	if h.State != state.Healthy || h.ConsecutiveFailures != 0 || h.LastFailure.IsZero() || w.state.healthWrites != writes+1 {
		t.Fatalf("after recovery: got %+v, %d writes; want %s, 0 failures, the last failure kept, 1 write", h, w.state.healthWrites-writes, state.Healthy)
	}
	// Another success changes nothing: no write.
	if _, err := r.Run(context.Background(), rotate); err != nil || w.state.healthWrites != writes+1 {
		t.Fatalf("a second success: got err %v, %d health writes; want nil, 0", err, w.state.healthWrites-writes-1)
	}
}
