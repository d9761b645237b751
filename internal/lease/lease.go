// Package lease coordinates forced rotations of one provider across invocations
// that run at once, in any number of execution environments.
//
// A consumer whose partner refused the published token asks the function to
// rotate it; a whole fleet asks at once. Only one invocation may ask the provider:
// the one that takes the provider's lease, a small object written with a
// conditional write (create only if absent, replace only the version read), which
// exactly one of any number of concurrent writers wins. The lease records who took
// it, when, and until when it holds: the holder's deadline, so a holder that dies
// leaves a lease that goes stale by itself, no later than its invocation would
// have been stopped. It doubles as the rate limit: a lease taken less than the
// interval ago is not taken again, held or released, so a provider whose fresh
// token is refused again is not asked again within the interval.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Objects stores lease records with conditional writes; S3 is one.
type Objects interface {
	// Get returns the object at key and its entity tag; found is false when there
	// is none.
	Get(ctx context.Context, key string) (data []byte, etag string, found bool, err error)
	// Put writes the object at key only while it is as read: absent when ifMatch is
	// empty, else at the entity tag ifMatch. It returns the new entity tag, or an
	// error wrapping ErrConflict when another writer came first.
	Put(ctx context.Context, key string, data []byte, ifMatch string) (etag string, err error)
}

// ErrConflict says another writer changed the lease between its read and this
// write: that writer took it.
var ErrConflict = errors.New("the lease was written by another invocation meanwhile")

// DefaultTTL is how long a lease taken without a deadline holds: Lambda's longest
// timeout, the most any invocation can run.
const DefaultTTL = 15 * time.Minute

// Record is a lease as stored, one JSON object per provider.
type Record struct {
	Provider string `json:"provider"`
	// Holder names the invocation that took it (its request id).
	Holder string `json:"holder"`
	// TakenAt is when it was taken: the last forced rotation of the provider.
	TakenAt time.Time `json:"taken_at"`
	// Until is when it goes stale: the holder's deadline.
	Until time.Time `json:"until"`
	// ReleasedAt is when the holder was done with it; zero while it is held.
	ReleasedAt time.Time `json:"released_at,omitzero"`
}

// Held says whether r still excludes everyone else at now: until its holder's
// deadline, and never longer than DefaultTTL after it was taken, which no
// invocation outlives, so that a lease with a far Until cannot hold off forced
// rotations.
func (r Record) Held(now time.Time) bool {
	return r.ReleasedAt.IsZero() && now.Before(r.Until) && now.Before(r.TakenAt.Add(DefaultTTL))
}

// Refusal says why a lease was not taken.
type Refusal struct {
	// Held says another invocation holds the lease now (Holder, since TakenAt).
	Held bool
	// Next is when the lease may be taken again: the end of the interval since
	// it was last taken, or its Until while it is held, whichever is later.
	Next time.Time
	// Record is the lease as read.
	Record Record
}

func (r *Refusal) Error() string {
	if r.Held {
		return fmt.Sprintf("another invocation (%s) has been rotating it since %s", r.Record.Holder, r.Record.TakenAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("a forced rotation was made at %s; the next is allowed at %s",
		r.Record.TakenAt.UTC().Format(time.RFC3339), r.Next.UTC().Format(time.RFC3339))
}

// decide says whether a lease as read (nil: none) may be taken at now, given the
// least interval between two forced rotations.
func decide(now time.Time, cur *Record, interval time.Duration) *Refusal {
	if cur == nil {
		return nil
	}
	next := cur.TakenAt.Add(interval)
	if cur.Held(now) {
		end := cur.Until
		if limit := cur.TakenAt.Add(DefaultTTL); limit.Before(end) {
			end = limit
		}
		if end.After(next) {
			next = end
		}
		return &Refusal{Held: true, Next: next, Record: *cur}
	}
	if now.Before(next) {
		return &Refusal{Next: next, Record: *cur}
	}
	return nil
}

// Store takes and releases the providers' leases, one object each under Prefix.
type Store struct {
	Objects Objects
	// Prefix is put before the provider's name to make the key, such as "leases/".
	Prefix string
	// Interval is the least time between two takes of one provider's lease: at most
	// one forced rotation per provider per Interval. Zero: no limit but the lease.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Lease is a lease taken, to be released by its holder.
type Lease struct {
	Record Record
	key    string
	etag   string
}

// Take takes provider's lease for holder until ctx's deadline (DefaultTTL from
// now without one). It fails with a *Refusal when the lease is held or was taken
// less than Interval ago, and with an error wrapping ErrConflict when another
// invocation took it between the read and the write.
func (s *Store) Take(ctx context.Context, provider, holder string) (Lease, error) {
	key := s.Prefix + provider
	data, etag, found, err := s.Objects.Get(ctx, key)
	if err != nil {
		return Lease{}, fmt.Errorf("read the lease %s: %w", key, err)
	}
	now := s.now()
	var cur *Record
	if found {
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			// A lease that does not read is taken over: it guards nothing anyone
			// can see, and refusing forever would stop every forced rotation.
			r = Record{}
		} else {
			cur = &r
		}
	}
	if refusal := decide(now, cur, s.Interval); refusal != nil {
		return Lease{}, refusal
	}
	until, ok := ctx.Deadline()
	if !ok {
		until = now.Add(DefaultTTL)
	}
	rec := Record{Provider: provider, Holder: holder, TakenAt: now, Until: until}
	body, _ := json.Marshal(rec) // a Record always marshals
	ifMatch := ""
	if found {
		ifMatch = etag
	}
	newTag, err := s.Objects.Put(ctx, key, body, ifMatch)
	if err != nil {
		return Lease{}, fmt.Errorf("take the lease %s: %w", key, err)
	}
	return Lease{Record: rec, key: key, etag: newTag}, nil
}

// Release marks l done, so that the next forced rotation needs only the interval
// to pass. A lease taken over meanwhile (it went stale) is left to its new holder.
func (s *Store) Release(ctx context.Context, l Lease) error {
	rec := l.Record
	rec.ReleasedAt = s.now()
	body, _ := json.Marshal(rec) // a Record always marshals
	if _, err := s.Objects.Put(ctx, l.key, body, l.etag); err != nil {
		return fmt.Errorf("release the lease %s: %w", l.key, err)
	}
	return nil
}

// Await waits until provider's lease is no longer held, polling every poll, or
// until ctx ends; it returns the lease as last read (nil when there is none).
func (s *Store) Await(ctx context.Context, provider string, poll time.Duration) (*Record, error) {
	key := s.Prefix + provider
	for {
		data, _, found, err := s.Objects.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("read the lease %s: %w", key, err)
		}
		if !found {
			return nil, nil
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil || !r.Held(s.now()) {
			return &r, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return &r, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
