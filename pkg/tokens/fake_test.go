package tokens_test

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fakeSSM is an in-memory ParameterReader. It counts reads, can fail them, and can
// hold them until released, so tests observe sharing without sleeping.
type fakeSSM struct {
	mu      sync.Mutex
	values  map[string]string
	err     error
	reads   int
	inputs  []ssm.GetParameterInput
	ctxs    []context.Context
	block   chan struct{} // when non-nil, reads wait until it is closed
	entered chan struct{} // when non-nil, signalled (without blocking) as a read starts
}

// hold makes reads wait until release is called, and returns a channel that
// is signalled when a read has started.
func (f *fakeSSM) hold() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block, f.entered = make(chan struct{}), make(chan struct{}, 1)
	return f.entered
}

// release lets held reads, and all later ones, proceed.
func (f *fakeSSM) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.block)
}

func newFakeSSM() *fakeSSM { return &fakeSSM{values: map[string]string{}} }

func (f *fakeSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	f.reads++
	f.inputs = append(f.inputs, *in)
	f.ctxs = append(f.ctxs, ctx)
	block, entered := f.block, f.entered
	f.mu.Unlock()

	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.values[*in.Name]
	if !ok {
		msg := "Parameter " + *in.Name + " not found."
		return nil, &types.ParameterNotFound{Message: &msg}
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: &v, Type: types.ParameterTypeSecureString}}, nil
}

func (f *fakeSSM) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[name] = value
}

// publish stores tok the way the refresher does.
func (f *fakeSSM) publish(name string, tok tokens.Token) {
	b, err := tok.Marshal()
	if err != nil {
		panic(err)
	}
	f.set(name, string(b))
}

func (f *fakeSSM) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSSM) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// t0 is the tests' "now": a fixed instant, so no assertion depends on the wall clock.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// published returns a token issued at t0 that expires after lifetime.
func published(access string, lifetime time.Duration) tokens.Token {
	return tokens.Token{
		AccessToken: access,
		TokenType:   "Bearer",
		IssuedAt:    t0,
		ExpiresAt:   t0.Add(lifetime),
		Provider:    "ecard",
	}
}

// valueReader answers every read with one raw value, even a missing one, which
// the map-backed fake cannot express.
type valueReader struct{ value *string }

func (r valueReader) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: r.value}}, nil
}

func ptr[T any](v T) *T { return &v }
