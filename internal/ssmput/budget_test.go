package ssmput

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

type countingPut struct{ calls atomic.Int64 }

func (c *countingPut) PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	c.calls.Add(1)
	return &ssm.PutParameterOutput{}, nil
}

// TestBudgetSharesHold: workers that each pace themselves to their share of the
// budget, with many concurrent callers each, together never write faster than the
// budget: n writes take at least (n - workers) / rate, the first write of each
// worker being free. A delayed goroutine can only make the run slower, so the
// bound holds on a loaded machine too.
func TestBudgetSharesHold(t *testing.T) {
	tests := []struct {
		name             string
		perSecond        float64
		workers, callers int
		writesPerCaller  int
	}{
		{"one invocation", 400, 1, 8, 10},
		{"four workers", 400, 4, 8, 5},
		{"fewer workers than shares", 400, 2, 8, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &countingPut{}
			shares := 4
			if tt.workers == 1 {
				shares = 1
			}
			start := time.Now()
			var wg sync.WaitGroup
			for range tt.workers {
				b := Budget{API: api, Limiter: NewLimiter(tt.perSecond, shares)}
				for range tt.callers {
					wg.Go(func() {
						for range tt.writesPerCaller {
							if _, err := b.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/p")}); err != nil {
								t.Error(err)
							}
						}
					})
				}
			}
			wg.Wait()
			elapsed := time.Since(start)
			n := api.calls.Load()
			if want := int64(tt.workers * tt.callers * tt.writesPerCaller); n != want {
				t.Fatalf("got %d writes, want %d", n, want)
			}
			// Each worker writes at perSecond/shares: its k writes take (k-1) intervals.
			perWorker := n / int64(tt.workers)
			least := time.Duration(float64(perWorker-1) / (tt.perSecond / float64(shares)) * float64(time.Second))
			if elapsed < least {
				t.Errorf("got %d writes in %v, want at least %v at %.0f a second shared %d ways", n, elapsed, least, tt.perSecond, shares)
			}
		})
	}
}

// TestBudgetSharesStartApart: shares made at the same instant, as by workers the
// queue starts together, allow their first writes at different points of their
// interval, never later than one interval, so that they do not write in lockstep.
func TestBudgetSharesStartApart(t *testing.T) {
	const perSecond, shares = 5.0, 5 // one write a second each
	first := map[time.Duration]bool{}
	for range 20 {
		r := NewLimiter(perSecond, shares).Reserve()
		d := r.Delay()
		if d > time.Second {
			t.Fatalf("got a first write after %v, want at most one interval (1s)", d)
		}
		first[d.Round(10*time.Millisecond)] = true
	}
	if len(first) < 5 {
		t.Errorf("got first writes at %d distinct points of the interval among 20 shares, want at least 5", len(first))
	}
	if d := NewLimiter(perSecond, 1).Reserve().Delay(); d != 0 {
		t.Errorf("got a first write of a budget of one share after %v, want at once", d)
	}
}

// TestBudgetDeadline: a write the budget cannot allow before the deadline is not
// waited for: it fails at once with ErrWriteBudget, and nothing is sent.
func TestBudgetDeadline(t *testing.T) {
	api := &countingPut{}
	b := Budget{API: api, Limiter: NewLimiter(0.1, 1)} // one write every 10 s
	if _, err := b.PutParameter(context.Background(), &ssm.PutParameterInput{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := b.PutParameter(ctx, &ssm.PutParameterInput{})
	if !errors.Is(err, ErrWriteBudget) {
		t.Fatalf("got %v, want ErrWriteBudget", err)
	}
	if n := api.calls.Load(); n != 1 {
		t.Fatalf("got %d writes, want 1", n)
	}
	if NewLimiter(0, 3) != nil {
		t.Fatal("got a limiter for a budget of 0, want none")
	}
}

// TestBudgetReserve: a write reserved in advance is spent by exactly one write,
// which then does not wait; a second write under the same context waits for the
// budget as any other (here: it cannot before the deadline), and another
// budget's reservation spends nothing of this one.
func TestBudgetReserve(t *testing.T) {
	api := &countingPut{}
	b := Budget{API: api, Limiter: NewLimiter(1.0/3600, 1)} // one write an hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	carry, err := b.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reserved := carry(context.Background())
	if _, err := b.PutParameter(reserved, &ssm.PutParameterInput{}); err != nil {
		t.Fatalf("got %v for the reserved write, want it written at once", err)
	}
	if _, err := b.Reserve(ctx); !errors.Is(err, ErrWriteBudget) {
		t.Fatalf("got %v for a second reservation within the hour, want ErrWriteBudget", err)
	}
	late, cancelLate := context.WithTimeout(reserved, time.Minute)
	defer cancelLate()
	if _, err := b.PutParameter(late, &ssm.PutParameterInput{}); !errors.Is(err, ErrWriteBudget) {
		t.Fatalf("got %v for a second write on one reservation, want ErrWriteBudget", err)
	}
	other := Budget{API: api, Limiter: NewLimiter(1.0/3600, 1)}
	if _, err := other.PutParameter(late, &ssm.PutParameterInput{}); err != nil {
		t.Fatalf("got %v from another budget's first write, want it written", err)
	}
	if _, err := other.PutParameter(late, &ssm.PutParameterInput{}); !errors.Is(err, ErrWriteBudget) {
		t.Fatalf("got %v: another budget spent this one's reservation, want ErrWriteBudget", err)
	}
	if n := api.calls.Load(); n != 2 {
		t.Fatalf("got %d writes, want 2", n)
	}
	none := Budget{API: api}
	if carry, err := none.Reserve(ctx); err != nil || carry(ctx) != ctx {
		t.Fatalf("got %v from a budget without a limiter, want nothing reserved", err)
	}
}
