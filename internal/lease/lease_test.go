package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// memory is Objects in memory, with S3's conditional writes.
type memory struct {
	mu   sync.Mutex
	objs map[string][]byte
	tags map[string]string
	n    int
}

func newMemory() *memory { return &memory{objs: map[string][]byte{}, tags: map[string]string{}} }

func (m *memory) Get(_ context.Context, key string) ([]byte, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[key]
	return d, m.tags[key], ok, nil
}

func (m *memory) Put(_ context.Context, key string, data []byte, ifMatch string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, exists := m.objs[key]
	if ifMatch == "" && exists || ifMatch != "" && m.tags[key] != ifMatch {
		return "", ErrConflict
	}
	m.n++
	m.objs[key], m.tags[key] = data, fmt.Sprint(m.n)
	return m.tags[key], nil
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name     string
		cur      *Record
		interval time.Duration
		want     string // "" taken, "held" or "interval"
		next     time.Time
	}{
		{"free", nil, time.Minute, "", time.Time{}},
		{"held", &Record{TakenAt: ago(time.Second), Until: now.Add(time.Minute)}, time.Minute, "held", now.Add(time.Minute)},
		{"held, interval ends later", &Record{TakenAt: ago(time.Second), Until: now.Add(time.Second)}, time.Minute, "held", now.Add(59 * time.Second)},
		{"held with a far until", &Record{TakenAt: ago(16 * time.Minute), Until: now.Add(24 * time.Hour)}, time.Minute, "", time.Time{}},
		{"held, until capped", &Record{TakenAt: ago(time.Second), Until: now.Add(24 * time.Hour)}, time.Minute, "held", now.Add(DefaultTTL - time.Second)},
		{"held, no interval", &Record{TakenAt: ago(time.Second), Until: now.Add(time.Minute)}, 0, "held", now.Add(time.Minute)},
		{"stale within the interval", &Record{TakenAt: ago(30 * time.Second), Until: ago(time.Second)}, time.Minute, "interval", now.Add(30 * time.Second)},
		{"stale after the interval", &Record{TakenAt: ago(10 * time.Minute), Until: ago(5 * time.Minute)}, time.Minute, "", time.Time{}},
		{"stale, no interval", &Record{TakenAt: ago(time.Second), Until: now}, 0, "", time.Time{}},
		{"released within the interval", &Record{TakenAt: ago(10 * time.Second), Until: now.Add(time.Minute), ReleasedAt: ago(5 * time.Second)}, time.Minute, "interval", now.Add(50 * time.Second)},
		{"released after the interval", &Record{TakenAt: ago(2 * time.Minute), Until: now.Add(time.Minute), ReleasedAt: ago(time.Minute)}, time.Minute, "", time.Time{}},
		{"released, no interval", &Record{TakenAt: ago(time.Second), Until: now.Add(time.Minute), ReleasedAt: now}, 0, "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decide(now, tt.cur, tt.interval)
			got := ""
			if r != nil {
				got = "interval"
				if r.Held {
					got = "held"
				}
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if r != nil && !r.Next.Equal(tt.next) {
				t.Fatalf("got next %s, want %s", r.Next, tt.next)
			}
		})
	}
}

// TestTakeReleaseAwait walks one provider's lease through its life: taken until
// the holder's deadline, refused while held and within the interval, taken over
// once its holder's deadline has passed, released.
func TestTakeReleaseAwait(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m := newMemory()
	s := &Store{Objects: m, Prefix: "leases/", Interval: time.Minute, Now: func() time.Time { return now }}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(30*time.Second))
	defer cancel()
	l, err := s.Take(ctx, "ecard", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Record.Until.Equal(now.Add(30*time.Second)) || l.Record.Holder != "a" {
		t.Fatalf("got %+v, want held by a until the deadline", l.Record)
	}
	var r *Refusal
	if _, err := s.Take(context.Background(), "ecard", "b"); !errors.As(err, &r) || !r.Held || r.Record.Holder != "a" {
		t.Fatalf("take while held: got %v, want a refusal naming a", err)
	}
	// a died: 31 s later its lease is stale, but the interval has not passed.
	now = now.Add(31 * time.Second)
	if _, err := s.Take(context.Background(), "ecard", "b"); !errors.As(err, &r) || r.Held || !r.Next.Equal(now.Add(29*time.Second)) {
		t.Fatalf("take when stale within the interval: got %v, want refused until the interval ends", err)
	}
	now = now.Add(29 * time.Second)
	lb, err := s.Take(context.Background(), "ecard", "b")
	if err != nil {
		t.Fatalf("take over a stale lease: %v", err)
	}
	// a's release, late, leaves b's lease alone.
	if err := s.Release(context.Background(), l); !errors.Is(err, ErrConflict) {
		t.Fatalf("late release: got %v, want ErrConflict", err)
	}
	rec, err := s.Await(context.Background(), "other", time.Millisecond)
	if err != nil || rec != nil {
		t.Fatalf("await without a lease: got %v, %v, want nil, nil", rec, err)
	}
	done := make(chan *Record)
	go func() {
		rec, _ := s.Await(context.Background(), "ecard", time.Millisecond)
		done <- rec
	}()
	if err := s.Release(context.Background(), lb); err != nil {
		t.Fatal(err)
	}
	if rec := <-done; rec == nil || rec.Holder != "b" || rec.ReleasedAt.IsZero() {
		t.Fatalf("await: got %+v, want b's lease, released", rec)
	}
}

// TestTakeUnreadableLease takes over a lease object that does not read.
func TestTakeUnreadableLease(t *testing.T) {
	m := newMemory()
	if _, err := m.Put(context.Background(), "leases/x", []byte("not json"), ""); err != nil {
		t.Fatal(err)
	}
	s := &Store{Objects: m, Prefix: "leases/", Interval: time.Minute}
	if _, err := s.Take(context.Background(), "x", "a"); err != nil {
		t.Fatalf("got %v, want the lease taken", err)
	}
}
