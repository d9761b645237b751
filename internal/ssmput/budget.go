package ssmput

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/time/rate"
)

// ErrWriteBudget means a write could not be made within its context's deadline at
// the write budget's pace: the work was stopped, not refused by SSM.
var ErrWriteBudget = errors.New("write budget")

// Budget paces the PutParameter calls of API to a rate: the share of the
// deployment's write budget (PUT_PARAMETER_RATE) that one invocation environment may
// spend. SSM's PutParameter quota is per account and Region and shared with every
// other writer there (about 3 a second with standard throughput, 10 with higher
// throughput), and a throttled write costs its neighbours' writes too, so the
// writes are spaced out before they are sent instead of retried after SSM refuses
// them. A Budget is a token bucket (golang.org/x/time/rate) of burst 1: at most
// one call per interval, whatever the concurrency of its callers.
type Budget struct {
	// API makes the calls.
	API PutAPI
	// Limiter is the pace. Nil means no budget.
	Limiter *rate.Limiter
}

// NewLimiter returns the limiter of a budget of perSecond writes a second shared by
// shares invocations at once: each paces itself to perSecond / shares, so that the
// total holds however many of them run (fewer spend less of it). perSecond <= 0
// means no budget: nil.
//
// A shared limiter starts at a random point of its interval: workers that the
// queue starts together would otherwise write in lockstep, all shares at the same
// instant every interval, and SSM's quota, a bucket refilled at its rate, throttles
// such bursts although the average is within it.
func NewLimiter(perSecond float64, shares int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	per := rate.Limit(perSecond / float64(max(shares, 1)))
	lim := rate.NewLimiter(per, 1)
	if shares > 1 {
		interval := time.Duration(float64(time.Second) / float64(per))
		// The first write as if one had been made up to an interval ago.
		lim.AllowN(time.Now().Add(-rand.N(interval)), 1)
	}
	return lim
}

// PutParameter waits for the budget, then writes. When ctx's deadline comes before
// the budget allows the write, it returns at once an error wrapping ErrWriteBudget,
// so that the caller reports the provider unreached for that reason.
// A write reserved in advance (see Reserve) does not wait again.
func (b Budget) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if b.Limiter != nil && !b.spend(ctx) {
		if err := b.wait(ctx); err != nil {
			return nil, err
		}
	}
	return b.API.PutParameter(ctx, in, optFns...)
}

// Reserve waits, under ctx's deadline as PutParameter does, until the budget allows
// one write, and returns that write: carry(c) is c with the write reserved, so that
// the first PutParameter through the Budget under it spends the reservation instead
// of waiting again. A token is requested once its write's turn has come and then
// written at once: its life, which starts when it is issued, is not spent waiting
// for the budget. The writes follow their reservations, spaced by the budget, each
// by its own token request's latency.
func (b Budget) Reserve(ctx context.Context) (carry func(context.Context) context.Context, err error) {
	if b.Limiter == nil {
		return func(c context.Context) context.Context { return c }, nil
	}
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	r := &reservation{limiter: b.Limiter}
	return func(c context.Context) context.Context { return context.WithValue(c, reservationKey{}, r) }, nil
}

// Rate is the writes a second the budget allows; 0 when it has none.
func (b Budget) Rate() float64 {
	if b.Limiter == nil {
		return 0
	}
	return float64(b.Limiter.Limit())
}

// reservation is a write Reserve waited for; it is spent by one write.
type reservation struct {
	limiter *rate.Limiter
	spent   atomic.Bool
}

type reservationKey struct{}

// spend says whether ctx carries an unspent reservation of this budget, and spends it.
func (b Budget) spend(ctx context.Context) bool {
	r, ok := ctx.Value(reservationKey{}).(*reservation)
	return ok && r.limiter == b.Limiter && r.spent.CompareAndSwap(false, true)
}

func (b Budget) wait(ctx context.Context) error {
	if err := b.Limiter.Wait(ctx); err != nil {
		return fmt.Errorf("%w of %.3g writes a second: not reached before the deadline (%w)", ErrWriteBudget, float64(b.Limiter.Limit()), err)
	}
	return nil
}
