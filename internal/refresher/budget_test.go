package refresher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// slots is a write budget on a simulated clock: one write per interval, handed out
// in turn, and a deadline after which no turn comes. Time is budget time: what a
// caller waited for the budget, so that every figure is exact whatever the
// goroutines' interleaving. It is a WriteBudget, a TokenClient that notes each
// token's issue time, and a TokenStore whose writes wait for a turn unless the
// write was reserved.
type slots struct {
	TokenStore
	interval time.Duration
	deadline time.Duration // no turn at or after it; 0: none

	mu     sync.Mutex
	next   time.Duration // the next free turn
	turns  int
	issued map[string]time.Duration // by client id
	wrote  map[string]time.Duration // by provider
	asked  []string                 // client ids, in order of the token requests
}

// turn is one write a caller waited for: its time, and whether a write spent it.
type turn struct {
	at    time.Duration
	spent bool
}

type turnKey struct{}

var errNoTurn = errors.New("write budget: not reached before the deadline")

func (s *slots) take() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.next
	if s.deadline > 0 && at >= s.deadline {
		return 0, errNoTurn
	}
	s.next += s.interval
	s.turns++
	return at, nil
}

func (s *slots) Reserve(context.Context) (func(context.Context) context.Context, error) {
	at, err := s.take()
	if err != nil {
		return nil, err
	}
	t := &turn{at: at}
	return func(c context.Context) context.Context { return context.WithValue(c, turnKey{}, t) }, nil
}

func (s *slots) Rate() float64 { return float64(time.Second) / float64(s.interval) }

// Token issues a token at the time of the caller's turn, or at 0 when the caller
// reserved none (nothing then made it wait).
func (s *slots) Token(ctx context.Context, _ oauth.Endpoint, cred oauth.Credentials, _ ...oauth.TokenOption) (*tokens.Token, error) {
	var at time.Duration
	if t, ok := ctx.Value(turnKey{}).(*turn); ok {
		at = t.at
	}
	s.mu.Lock()
	s.issued[cred.ClientID] = at
	s.asked = append(s.asked, cred.ClientID)
	s.mu.Unlock()
	now := time.Now()
	return &tokens.Token{AccessToken: "t-" + cred.ClientID, TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
}

func (s *slots) Verify(context.Context, oauth.Check, *tokens.Token) error { return nil }

// Publish writes at the caller's reserved turn, spending it, or waits for the next turn.
func (s *slots) Publish(ctx context.Context, w store.Write) (tokens.Token, error) {
	var at time.Duration
	if t, ok := ctx.Value(turnKey{}).(*turn); ok && !t.spent {
		t.spent, at = true, t.at
	} else {
		var err error
		if at, err = s.take(); err != nil {
			return tokens.Token{}, err
		}
	}
	s.mu.Lock()
	s.wrote[w.Token.Provider] = at
	s.mu.Unlock()
	return s.TokenStore.Publish(ctx, w)
}

func newSlots(st TokenStore, interval, deadline time.Duration) *slots {
	return &slots{TokenStore: st, interval: interval, deadline: deadline, issued: map[string]time.Duration{}, wrote: map[string]time.Duration{}}
}

// TestWriteBudgetPacesTokenRequests: with a budget of one write a second and five
// providers due at once, each token is requested in its write's turn and written
// without waiting for the budget: no token waits a turn between being obtained
// and being written, and each write spends exactly one turn. Requested first and
// written in turn, as before, the last of them would wait four.
func TestWriteBudgetPacesTokenRequests(t *testing.T) {
	tests := []struct {
		name     string
		reserve  bool
		wantWait time.Duration // the longest wait between a token's issue and its write
	}{
		{"turn reserved before the token request", true, 0},
		{"token requested first", false, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			s := newSlots(w.store, time.Second, 0)
			r := w.refresher()
			r.Client, r.Store, r.MaxConcurrency = s, s, 8
			if tt.reserve {
				r.Writes = s
			}
			res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Results); got != 5 {
				t.Fatalf("got %d outcomes, want 5", got)
			}
			var longest time.Duration
			for _, o := range res.Results {
				if o.Status != StatusRefreshed {
					t.Fatalf("got %s %s (%s), want refreshed", o.Provider, o.Status, o.Error)
				}
				wait := s.wrote[o.Provider] - s.issued["id-"+o.Provider]
				if wait < 0 {
					t.Fatalf("got %s written %v before its token was issued", o.Provider, -wait)
				}
				longest = max(longest, wait)
			}
			if longest != tt.wantWait {
				t.Errorf("got a token waiting %v between its issue and its write, want %v at most", longest, tt.wantWait)
			}
			if s.turns != 5 {
				t.Errorf("got %d turns of the budget spent, want 5: one per write", s.turns)
			}
		})
	}
}

// TestWriteBudgetDeadline: a provider whose write's turn would come only after the
// run's time is up is not asked for a token (it could not be published), and fails
// with "write budget" as its reason; the others are refreshed.
func TestWriteBudgetDeadline(t *testing.T) {
	w := newWorld(t)
	s := newSlots(w.store, time.Second, 3*time.Second) // three turns before the deadline
	r := w.refresher()
	r.Client, r.Store, r.Writes = s, s, s
	r.State = nil // no run record to keep the rotation in for a later run
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got %v, want ErrFailed", err)
	}
	var refreshed, reached int
	for _, o := range res.Results {
		switch {
		case o.Status == StatusRefreshed:
			refreshed++
		case o.Status == StatusFailed && strings.Contains(o.Error, "write budget") && strings.Contains(o.Error, "not asked for a token"):
			reached++
		default:
			t.Errorf("got %s %s (%s), want refreshed or failed for the write budget", o.Provider, o.Status, o.Error)
		}
	}
	if refreshed != 3 || reached != 2 {
		t.Errorf("got %d refreshed and %d failed for the write budget, want 3 and 2", refreshed, reached)
	}
	if len(s.asked) != 3 {
		t.Errorf("got %d token requests, want 3: none for a provider the budget does not reach", len(s.asked))
	}
}
