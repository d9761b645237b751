package tokens_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/oauth2"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

const param = "/token-refresher/tokens/ecard"

var _ oauth2.TokenSource = (*tokens.Source)(nil).TokenSource()

func TestSourceReadsDecryptedParameter(t *testing.T) {
	store := newFakeSSM()
	want := published("tok-A", time.Hour)
	want.Scope = "read:reports"
	store.publish(param, want)
	clock := newFakeClock(t0)
	src := tokens.NewSource(store, param, tokens.WithClock(clock.Now), tokens.WithTimeout(3*time.Second))

	got, err := src.TokenContext(context.Background())
	if err != nil {
		t.Fatalf("Token: got err %v, want nil", err)
	}
	if got.AccessToken != "tok-A" || got.TokenType != "Bearer" || !got.Expiry.Equal(want.ExpiresAt) {
		t.Errorf("Token = %q %q %v, want tok-A Bearer %v", got.AccessToken, got.TokenType, got.Expiry, want.ExpiresAt)
	}
	if store.readCount() != 1 {
		t.Fatalf("reads = %d, want 1", store.readCount())
	}
	in := store.inputs[0]
	if in.Name == nil || *in.Name != param {
		t.Errorf("GetParameter Name = %v, want %q", in.Name, param)
	}
	if in.WithDecryption == nil || !*in.WithDecryption {
		t.Errorf("GetParameter WithDecryption = %v, want true: the parameter is a SecureString", in.WithDecryption)
	}
	if _, ok := store.ctxs[0].Deadline(); !ok {
		t.Error("got a read's context with no deadline, want one: WithTimeout should bound it")
	}
	if src.Name() != param {
		t.Errorf("Name() = %q, want %q", src.Name(), param)
	}
}

func TestSourceDefaultsTokenType(t *testing.T) {
	store := newFakeSSM()
	store.set(param, `{"access_token":"tok-A","expires_at":"2026-11-22T11:00:00Z"}`)
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))
	got, err := src.TokenContext(context.Background())
	if err != nil {
		t.Fatalf("Token: got err %v, want nil", err)
	}
	if got.TokenType != "Bearer" {
		t.Errorf("TokenType = %q, want Bearer when the value has none", got.TokenType)
	}
}

func TestSourceReReadsOnlyWithinMargin(t *testing.T) {
	tests := []struct {
		name      string
		opts      []tokens.Option
		at        time.Duration // since t0, for the second call
		wantReads int
	}{
		{"fresh token is served from memory", nil, 30 * time.Minute, 1},
		{"just outside the default margin", nil, 59*time.Minute - time.Second, 1},
		{"at the default margin", nil, 59 * time.Minute, 2},
		{"inside a custom margin", []tokens.Option{tokens.WithMargin(10 * time.Minute)}, 51 * time.Minute, 2},
		{"outside a custom margin", []tokens.Option{tokens.WithMargin(10 * time.Minute)}, 49 * time.Minute, 1},
		{"zero margin reads only at expiry", []tokens.Option{tokens.WithMargin(0)}, 59*time.Minute + 59*time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeSSM()
			store.publish(param, published("tok-A", time.Hour))
			clock := newFakeClock(t0)
			src := tokens.NewSource(store, param, append(tc.opts, tokens.WithClock(clock.Now))...)
			if _, err := src.TokenContext(context.Background()); err != nil {
				t.Fatalf("first Token: got err %v, want nil", err)
			}
			// The refresher published a successor in the meantime.
			next := published("tok-B", 2*time.Hour)
			store.publish(param, next)
			clock.Set(t0.Add(tc.at))
			got, err := src.TokenContext(context.Background())
			if err != nil {
				t.Fatalf("second Token: got err %v, want nil", err)
			}
			if n := store.readCount(); n != tc.wantReads {
				t.Errorf("reads = %d, want %d", n, tc.wantReads)
			}
			want := map[int]string{1: "tok-A", 2: "tok-B"}[tc.wantReads]
			if got.AccessToken != want {
				t.Errorf("token = %q, want %q", got.AccessToken, want)
			}
		})
	}
}

func TestSourceCachesAcrossManyCalls(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	clock := newFakeClock(t0)
	src := tokens.NewSource(store, param, tokens.WithClock(clock.Now))
	for i := range 100 {
		clock.Advance(time.Second)
		if _, err := src.TokenContext(context.Background()); err != nil {
			t.Fatalf("call %d: got err %v, want nil", i, err)
		}
	}
	if n := store.readCount(); n != 1 {
		t.Errorf("reads = %d, want 1", n)
	}
}

func TestSourceInvalidateForcesReRead(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	clock := newFakeClock(t0)
	src := tokens.NewSource(store, param, tokens.WithClock(clock.Now))
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.publish(param, published("tok-B", time.Hour))

	src.Invalidate()
	got, err := src.TokenContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "tok-B" || store.readCount() != 2 {
		t.Errorf("after Invalidate: token %q after %d reads, want tok-B after 2", got.AccessToken, store.readCount())
	}
	// The new token is cached again.
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d, want 2", n)
	}
}

func TestSourceInvalidateDuringReadIsNotLost(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	entered := store.hold()
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))

	done := make(chan error)
	go func() {
		_, err := src.TokenContext(context.Background())
		done <- err
	}()
	<-entered
	src.Invalidate() // e.g. a 401 seen by another goroutine while the read is under way
	store.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d, want 2: a read that started before Invalidate must not satisfy it", n)
	}
}

func TestSourceConcurrentCallersShareOneRead(t *testing.T) {
	const callers = 50
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	entered := store.hold()
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))

	var started, finished sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		started.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			started.Done()
			tok, err := src.TokenContext(context.Background())
			if err == nil && tok.AccessToken != "tok-A" {
				err = errors.New("got " + tok.AccessToken)
			}
			errs <- err
		}()
	}
	started.Wait()
	<-entered // one read is held; every caller either waits for it or finds its result cached
	store.release()
	finished.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("got err %v, want nil", err)
		}
	}
	if n := store.readCount(); n != 1 {
		t.Errorf("reads = %d for %d concurrent callers, want 1", n, callers)
	}
}

func TestSourceCallerGivingUpDoesNotCancelSharedRead(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	entered := store.hold()
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() {
		_, err := src.TokenContext(ctx)
		first <- err
	}()
	<-entered
	second := make(chan *oauth2.Token)
	go func() {
		tok, err := src.TokenContext(context.Background())
		if err != nil {
			t.Errorf("got err %v, want nil", err)
		}
		second <- tok
	}()

	cancel()
	err := <-first
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), param) {
		t.Errorf("cancelled caller got %v, want context.Canceled naming %s", err, param)
	}
	store.release()
	if tok := <-second; tok == nil || tok.AccessToken != "tok-A" {
		t.Errorf("other caller got %v, want tok-A", tok)
	}
	if n := store.readCount(); n != 1 {
		t.Errorf("reads = %d, want 1", n)
	}
}

func TestSourceFallsBackToValidCachedToken(t *testing.T) {
	tests := []struct {
		name       string
		breakStore func(*fakeSSM)
	}{
		{"SSM error", func(f *fakeSSM) { f.setErr(errors.New("ThrottlingException: rate exceeded")) }},
		{"parameter deleted", func(f *fakeSSM) {
			f.mu.Lock()
			delete(f.values, param)
			f.mu.Unlock()
		}},
		{"malformed value", func(f *fakeSSM) { f.set(param, "{") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeSSM()
			store.publish(param, published("tok-A", time.Hour))
			clock := newFakeClock(t0)
			src := tokens.NewSource(store, param, tokens.WithClock(clock.Now))
			if _, err := src.TokenContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.breakStore(store)
			clock.Set(t0.Add(59*time.Minute + 30*time.Second)) // inside the margin, not expired

			got, err := src.TokenContext(context.Background())
			if err != nil {
				t.Fatalf("Token = %v, want the cached token while it is valid", err)
			}
			if got.AccessToken != "tok-A" {
				t.Errorf("token = %q, want the cached tok-A", got.AccessToken)
			}
			if n := store.readCount(); n != 2 {
				t.Errorf("reads = %d, want 2 (the failed re-read)", n)
			}
			// Right after a failure the cached token is served without hammering SSM.
			clock.Advance(time.Second)
			if _, err := src.TokenContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := store.readCount(); n != 2 {
				t.Errorf("reads = %d right after a failed read, want 2", n)
			}
			// Later it tries again.
			clock.Advance(10 * time.Second)
			if _, err := src.TokenContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := store.readCount(); n != 3 {
				t.Errorf("reads = %d after the quiet period, want 3", n)
			}
		})
	}
}

func TestSourceErrorsWhenCachedTokenExpiredAndReadFails(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	clock := newFakeClock(t0)
	src := tokens.NewSource(store, param, tokens.WithClock(clock.Now))
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection refused")
	store.setErr(boom)
	clock.Set(t0.Add(time.Hour)) // expires_at itself: no longer valid

	tok, err := src.TokenContext(context.Background())
	if err == nil {
		t.Fatalf("Token = %q, want an error: the cached token has expired", tok.AccessToken)
	}
	if !errors.Is(err, boom) {
		t.Errorf("got err %v, want errors.Is(err, boom): the read error wrapped", err)
	}
	if !strings.Contains(err.Error(), param) {
		t.Errorf("got err %q, want one naming %q", err, param)
	}
}

func TestSourceParameterNotFound(t *testing.T) {
	store := newFakeSSM()
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))
	_, err := src.TokenContext(context.Background())
	var nf *types.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("got err %v, want errors.As(err, *types.ParameterNotFound)", err)
	}
	if !strings.Contains(err.Error(), param) {
		t.Errorf("got err %q, want one naming %q", err, param)
	}
}

func TestSourceMalformedValue(t *testing.T) {
	const secret = "s3cr3t-access-token-value"
	tests := []struct {
		name  string
		value *string
	}{
		{"not JSON", ptr("Bearer " + secret)},
		{"truncated JSON", ptr(`{"access_token":"` + secret + `","expires_at":"2026-11-22T11:0`)},
		{"no access_token", ptr(`{"token_type":"Bearer","expires_at":"2026-11-22T11:00:00Z","scope":"` + secret + `"}`)},
		{"no expires_at", ptr(`{"access_token":"` + secret + `"}`)},
		{"expires_at not RFC 3339", ptr(`{"access_token":"` + secret + `","expires_at":"` + secret + `"}`)},
		{"access_token not a string", ptr(`{"access_token":["` + secret + `"],"expires_at":"2026-11-22T11:00:00Z"}`)},
		{"empty", ptr("")},
		{"no value at all", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tokens.NewSource(valueReader{tc.value}, param, tokens.WithClock(newFakeClock(t0).Now))
			_, err := src.TokenContext(context.Background())
			if !errors.Is(err, tokens.ErrMalformed) {
				t.Fatalf("got err %v, want errors.Is(err, tokens.ErrMalformed)", err)
			}
			if !strings.Contains(err.Error(), param) {
				t.Errorf("got err %q, want one naming %q", err, param)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("got err %q, want one without the parameter's value", err)
			}
		})
	}
}

func TestSourceExpiredToken(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0.Add(2*time.Hour)).Now))
	tok, err := src.TokenContext(context.Background())
	if !errors.Is(err, tokens.ErrExpired) {
		t.Fatalf("Token = %v, %v; want ErrExpired", tok, err)
	}
	for _, want := range []string{param, "2026-11-22T11:00:00Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got err %q, want one containing %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "tok-A") {
		t.Errorf("got err %q, want one without the token", err)
	}
}

func TestNewSourceRejectsProgrammingErrors(t *testing.T) {
	tests := []struct {
		name   string
		client tokens.ParameterReader
		param  string
	}{
		{"nil client", nil, param},
		{"empty name", newFakeSSM(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewSource did not panic, want a panic")
				}
			}()
			tokens.NewSource(tc.client, tc.param)
		})
	}
}
