package refresher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/lease"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// memObjects is lease.Objects in memory, with S3's conditional writes.
type memObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
	tags map[string]string
	n    int
}

func newMemObjects() *memObjects {
	return &memObjects{objs: map[string][]byte{}, tags: map[string]string{}}
}

func (m *memObjects) Get(_ context.Context, key string) ([]byte, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[key]
	return d, m.tags[key], ok, nil
}

func (m *memObjects) Put(_ context.Context, key string, data []byte, ifMatch string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, exists := m.objs[key]
	if ifMatch == "" && exists || ifMatch != "" && m.tags[key] != ifMatch {
		return "", lease.ErrConflict
	}
	m.n++
	m.objs[key], m.tags[key] = data, fmt.Sprint(m.n)
	return m.tags[key], nil
}

func (m *memObjects) put(t *testing.T, key string, r lease.Record) {
	t.Helper()
	data, _ := json.Marshal(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	m.objs[key], m.tags[key] = data, fmt.Sprint(m.n)
}

func conditional(provider, fp string) []byte {
	return fmt.Appendf(nil, `{"action":"rotate","providers":[%q],"if_token":%q}`, provider, fp)
}

// TestConditionalRotation decides a conditional rotation of ecard by the
// fingerprint it names and by the provider's lease: free, held by a live
// invocation, left by a dead one, released, within the interval or after it.
func TestConditionalRotation(t *testing.T) {
	now := time.Now()
	held := lease.Record{Provider: "ecard", Holder: "other", TakenAt: now.Add(-time.Second), Until: now.Add(time.Hour)}
	dead := lease.Record{Provider: "ecard", Holder: "dead", TakenAt: now.Add(-10 * time.Minute), Until: now.Add(-5 * time.Minute)}
	deadRecently := lease.Record{Provider: "ecard", Holder: "dead", TakenAt: now.Add(-30 * time.Second), Until: now.Add(-time.Second)}
	released := lease.Record{Provider: "ecard", Holder: "other", TakenAt: now.Add(-10 * time.Second), Until: now.Add(time.Hour), ReleasedAt: now.Add(-5 * time.Second)}
	releasedLong := lease.Record{Provider: "ecard", Holder: "other", TakenAt: now.Add(-2 * time.Minute), Until: now.Add(time.Hour), ReleasedAt: now.Add(-time.Minute)}
	tests := []struct {
		name       string
		fp         string // "": the published token's
		lease      *lease.Record
		interval   time.Duration
		noLeases   bool
		noToken    bool
		wantStatus Status
		wantReason string
	}{
		{"fingerprint matches, lease free", "", nil, time.Minute, false, false, StatusRefreshed, ""},
		{"fingerprint does not match", "00000000", nil, time.Minute, false, false, StatusSkipped, "rotated since"},
		{"no token published", "00000000", nil, time.Minute, false, true, StatusSkipped, "no token is published"},
		{"lease held", "", &held, time.Minute, false, false, StatusSkipped, "rotation in progress: another invocation (other)"},
		{"lease left by a dead holder", "", &dead, time.Minute, false, false, StatusRefreshed, ""},
		{"lease left by a dead holder, within the interval", "", &deadRecently, time.Minute, false, false, StatusSkipped, "next is allowed at"},
		{"lease left by a dead holder, no interval", "", &deadRecently, 0, false, false, StatusRefreshed, ""},
		{"released within the interval", "", &released, time.Minute, false, false, StatusSkipped, "at most one forced rotation per MIN_FORCED_ROTATION_INTERVAL"},
		{"released after the interval", "", &releasedLong, time.Minute, false, false, StatusRefreshed, ""},
		{"no lease store", "", nil, time.Minute, true, false, StatusFailed, "REGISTRY_BUCKET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.refresher()
			if !tt.noToken {
				if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
					t.Fatal(err)
				}
			}
			objs := newMemObjects()
			if tt.lease != nil {
				objs.put(t, "leases/ecard", *tt.lease)
			}
			if !tt.noLeases {
				r.Leases = &lease.Store{Objects: objs, Prefix: "leases/", Interval: tt.interval}
			}
			r.LeaseWait = 50 * time.Millisecond
			before := w.store.tokens[param("ecard")]
			fp := tt.fp
			if fp == "" {
				fp = tokens.Fingerprint(before.AccessToken)
			}
			requests := w.srv.Stats("ecard").Requests
			res, _ := handle(t, r, conditional("ecard", fp))
			o := outcome(res, "ecard")
			if o.Status != tt.wantStatus || !strings.Contains(o.Reason+o.Error, tt.wantReason) {
				t.Fatalf("got %s %q, want %s %q", o.Status, o.Reason+o.Error, tt.wantStatus, tt.wantReason)
			}
			after := w.store.tokens[param("ecard")]
			wantRequests := 0
			if tt.wantStatus == StatusRefreshed {
				wantRequests = 1
			}
			if got := w.srv.Stats("ecard").Requests - requests; got != wantRequests {
				t.Fatalf("got %d token requests, want %d", got, wantRequests)
			}
			if !tt.noToken && tt.wantStatus != StatusFailed && o.TokenFingerprint != tokens.Fingerprint(after.AccessToken) {
				t.Fatalf("got token_fingerprint %q, want the published token's, %q", o.TokenFingerprint, tokens.Fingerprint(after.AccessToken))
			}
			if tt.wantStatus == StatusRefreshed {
				var rec lease.Record
				_ = json.Unmarshal(objs.objs["leases/ecard"], &rec)
				if rec.ReleasedAt.IsZero() || rec.Holder == "dead" {
					t.Fatalf("got lease %+v, want it taken by this run and released", rec)
				}
			}
		})
	}
}

// TestConditionalRotationConcurrent sends one refused token's conditional
// rotation from many invocations at once, each its own Refresher sharing the
// store and the leases: exactly one token request, and every other invocation
// answers skipped with the new token's fingerprint, and only the rotating one
// writes the run record. With no interval too: the
// lease and the read after taking it alone keep it to one.
func TestConditionalRotationConcurrent(t *testing.T) {
	for _, interval := range []time.Duration{time.Minute, 0} {
		t.Run(fmt.Sprint(interval), func(t *testing.T) {
			w := newWorld(t)
			if _, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
				t.Fatal(err)
			}
			objs := newMemObjects()
			refused := tokens.Fingerprint(w.store.tokens[param("ecard")].AccessToken)
			requests, runWrites := w.srv.Stats("ecard").Requests, w.state.runWrites
			const n = 30
			results := make([]Outcome, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := w.refresher()
					r.Leases = &lease.Store{Objects: objs, Prefix: "leases/", Interval: interval}
					res, _ := (&Handler{Refresher: r}).Handle(context.Background(), conditional("ecard", refused))
					results[i] = outcome(res, "ecard")
				}()
			}
			wg.Wait()
			if got := w.srv.Stats("ecard").Requests - requests; got != 1 {
				t.Fatalf("got %d token requests, want 1", got)
			}
			now := tokens.Fingerprint(w.store.tokens[param("ecard")].AccessToken)
			refreshed := 0
			for _, o := range results {
				if o.Status == StatusRefreshed {
					refreshed++
				}
				if o.Status == StatusFailed || o.TokenFingerprint != now {
					t.Errorf("got %+v, want refreshed or skipped with token_fingerprint %s", o, now)
				}
			}
			if refreshed != 1 {
				t.Fatalf("got %d invocations refreshing, want 1", refreshed)
			}
			// Only the one that rotated writes the run record.
			if got := w.state.runWrites - runWrites; got != 1 {
				t.Fatalf("got %d run record writes, want 1", got)
			}
		})
	}
}

// TestConditionalRotationFanOut sends a conditional rotation through the
// planner and the workers: a large one is queued with its if_token, the worker
// decides it by the fingerprint and the lease, and a redelivered job asks nobody.
func TestConditionalRotationFanOut(t *testing.T) {
	w := manyWorld(t, InlineRotations+1)
	r := w.refresher()
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	q := &fakeQueue{}
	r.Queue = q
	r.Leases = &lease.Store{Objects: newMemObjects(), Prefix: "leases/", Interval: time.Minute}
	refused := tokens.Fingerprint(w.store.tokens[param("p03")].AccessToken)
	var names []string
	for i := range InlineRotations + 1 {
		names = append(names, fmt.Sprintf("%q", fmt.Sprintf("p%02d", i)))
	}
	event := fmt.Appendf(nil, `{"action":"rotate","providers":[%s],"if_token":%q}`, strings.Join(names, ","), refused)
	res, err := handle(t, r, event)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(res, "p03"); o.Status != StatusQueued {
		t.Fatalf("p03: got %+v, want queued", o)
	}
	if o := outcome(res, "p04"); o.Status != StatusSkipped || o.TokenFingerprint == "" {
		t.Fatalf("p04, whose token is not the refused one: got %+v, want skipped with its fingerprint", o)
	}
	msgs := q.last()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Body, `"if_token":"`+refused+`"`) {
		t.Fatalf("got jobs %+v, want one, for p03, with its if_token", msgs)
	}
	requests := w.srv.Stats("p03").Requests
	res, err = handle(t, r, delivery(t, "c", msgs))
	if o := res.Results[0]; err != nil || o.Status != StatusRefreshed || o.TokenFingerprint == refused {
		t.Fatalf("worker: got %v %+v, want refreshed with a new fingerprint", err, o)
	}
	res, _ = handle(t, r, delivery(t, "again", msgs))
	if o := res.Results[0]; o.Status != StatusSkipped || !strings.Contains(o.Reason, "rotated since") {
		t.Fatalf("redelivered job: got %+v, want skipped, rotated since", o)
	}
	if got := w.srv.Stats("p03").Requests - requests; got != 1 {
		t.Fatalf("got %d token requests, want 1", got)
	}
	// A conditional job merged with an unconditional rotation of the same provider
	// rotates unconditionally.
	v := w.store.versions[param("p05")]
	jobs, _ := merged([]Job{
		{Provider: "p05", PlannedAt: time.Now(), Rotate: true, IfToken: "00000000", Version: &v},
		{Provider: "p05", PlannedAt: time.Now(), Rotate: true, Version: &v},
	})
	if jobs[0].IfToken != "" || !jobs[0].Rotate {
		t.Fatalf("merged: got %+v, want an unconditional rotation", jobs[0])
	}
	if m := message(Job{Provider: "p05", Rotate: true, IfToken: "00000000"}, v); m.Dedup == message(Job{Provider: "p05", Rotate: true}, v).Dedup {
		t.Fatal("a conditional and an unconditional rotation job share a deduplication id")
	}
}
