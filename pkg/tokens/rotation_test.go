package tokens_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fakeRefresher is a Rotator standing in for the refresher function: it records
// the rotations it is sent and, unless told otherwise, publishes the successor at
// once, as the function does for the first conditional rotation of a token.
type fakeRefresher struct {
	store     *fakeSSM
	successor string // published on the first rotation; "" publishes nothing
	err       error  // returned by Rotate, as when the invoke is refused

	mu   sync.Mutex
	sent []tokens.Rotation
}

func (f *fakeRefresher) Rotate(_ context.Context, r tokens.Rotation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, r)
	if f.err != nil {
		return f.err
	}
	if f.successor != "" && len(f.sent) == 1 {
		f.store.publish(param, published(f.successor, time.Hour))
	}
	return nil
}

func (f *fakeRefresher) rotations() []tokens.Rotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tokens.Rotation(nil), f.sent...)
}

// refusedEverywhere returns a Source that has read tok-A, the token the parameter
// still holds, and a partner that accepts only accept.
func refusedEverywhere(t *testing.T, clock *fakeClock, accept []string, opts ...tokens.Option) (*tokens.Source, *fakeSSM, *partner) {
	t.Helper()
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	src := tokens.NewSource(store, param, append([]tokens.Option{tokens.WithClock(clock.Now)}, opts...)...)
	return src, store, newPartner(accept...)
}

// concurrently sends n GETs through tr at once and returns their statuses.
func concurrently(t *testing.T, tr http.RoundTripper, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "https://partner.example/v1/things", nil)
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			mu.Lock()
			statuses[res.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return statuses
}

func TestTransport401StormReadsOncePerQuietPeriod(t *testing.T) {
	const requests = 100
	clock := newFakeClock(t0)
	src, store, p := refusedEverywhere(t, clock, nil) // the partner refuses the published token
	tr := &tokens.Transport{Source: src, Base: p}

	if got := concurrently(t, tr, requests); got[http.StatusUnauthorized] != requests {
		t.Fatalf("statuses %v, want %d times 401", got, requests)
	}
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d for %d concurrent 401s, want 2 (the first read and one re-read)", n, requests)
	}
	if n := len(p.seen()); n != requests {
		t.Errorf("partner saw %d requests, want %d: no retry with the same token", n, requests)
	}

	// As in a busy Lambda: a request every 10 ms for a second, all refused.
	for range requests {
		clock.Advance(10 * time.Millisecond)
		concurrently(t, tr, 1)
	}
	// One second in, still within the quiet period.
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d after %d more 401s within the quiet period, want still 2", n, requests)
	}

	// After the quiet period, a 401 is worth one read again.
	clock.Advance(tokens.DefaultQuietPeriod)
	concurrently(t, tr, 10)
	if n := store.readCount(); n != 3 {
		t.Errorf("reads = %d after the quiet period, want 3", n)
	}
}

func TestTransportRotatesOnceForConcurrentRefusals(t *testing.T) {
	const requests = 100
	clock := newFakeClock(t0)
	store := newFakeSSM()
	refresher := &fakeRefresher{store: store, successor: "tok-B"}
	store.publish(param, published("tok-A", time.Hour))
	src := tokens.NewSource(store, param, tokens.WithClock(clock.Now), tokens.WithRotation(refresher))
	p := newPartner("tok-B") // the partner revoked tok-A, and the refresher has not noticed
	tr := &tokens.Transport{Source: src, Base: p}

	if got := concurrently(t, tr, requests); got[http.StatusOK] != requests {
		t.Fatalf("statuses %v, want %d times 200 after the rotation", got, requests)
	}
	sent := refresher.rotations()
	if len(sent) != 1 {
		t.Fatalf("rotations sent = %d for %d requests refused with one token, want 1", len(sent), requests)
	}
	event, err := json.Marshal(sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"action":"rotate","providers":["ecard"],"if_token":"` + tokens.Fingerprint("tok-A") + `"}`; string(event) != want {
		t.Errorf("event = %s, want %s", event, want)
	}
	// The first read, the re-read that found tok-A still published, and the polls
	// until tok-B appeared: the first poll finds it here.
	if n := store.readCount(); n != 3 {
		t.Errorf("reads = %d, want 3", n)
	}
	for _, auth := range p.seen() {
		if auth != "Bearer tok-A" && auth != "Bearer tok-B" {
			t.Errorf("partner saw %q", auth)
		}
	}
}

func TestTransportRotatesOnlyTheLatestToken(t *testing.T) {
	// The parameter already holds a successor: the re-read finds it, no rotation.
	store := newFakeSSM()
	refresher := &fakeRefresher{store: store, successor: "tok-C"}
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now), tokens.WithRotation(refresher))
	store.publish(param, published("tok-A", time.Hour))
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.publish(param, published("tok-B", time.Hour))
	tr := &tokens.Transport{Source: src, Base: newPartner("tok-B")}
	if got := concurrently(t, tr, 10); got[http.StatusOK] != 10 {
		t.Errorf("statuses %v, want 10 times 200", got)
	}
	if n := len(refresher.rotations()); n != 0 {
		t.Errorf("rotations sent = %d, want 0: the parameter already held a successor", n)
	}

	// A request whose body cannot be sent again is not retried, so it waits for no
	// rotation either: it gets the 401 at once.
	refused := &fakeRefresher{store: store, successor: "tok-C"}
	src2 := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now), tokens.WithRotation(refused))
	tr2 := &tokens.Transport{Source: src2, Base: newPartner("tok-C")}
	req, _ := http.NewRequest(http.MethodPost, "https://partner.example/", io.NopCloser(strings.NewReader("x")))
	res, err := tr2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || len(refused.rotations()) != 0 {
		t.Errorf("got status %d after %d rotations, want 401 after 0", res.StatusCode, len(refused.rotations()))
	}
}

func TestTransportRotationWaitIsBounded(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"no successor published in time", nil},
		{"the rotation cannot be sent", errors.New("AccessDeniedException")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			store := newFakeSSM()
			refresher := &fakeRefresher{store: store, err: tc.err} // publishes nothing
			src, store, p := refusedEverywhere(t, clock, []string{"tok-B"},
				tokens.WithRotation(refresher), tokens.WithRotationWait(300*time.Millisecond))
			refresher.store = store
			tr := &tokens.Transport{Source: src, Base: p}

			if got := concurrently(t, tr, 20); got[http.StatusUnauthorized] != 20 {
				t.Fatalf("statuses %v, want 20 times 401 when no successor comes", got)
			}
			if n := len(refresher.rotations()); n != 1 {
				t.Errorf("rotations sent = %d, want 1", n)
			}
			reads := store.readCount()
			// Within the quiet period: no read, no rotation, the 401 at once.
			concurrently(t, tr, 20)
			if n := store.readCount(); n != reads || len(refresher.rotations()) != 1 {
				t.Errorf("within the quiet period: reads %d -> %d, rotations %d; want no read and still 1 rotation",
					reads, n, len(refresher.rotations()))
			}
		})
	}
}

func TestTransportRotationWaitEndsWithTheRequest(t *testing.T) {
	clock := newFakeClock(t0)
	store := newFakeSSM()
	refresher := &fakeRefresher{store: store} // publishes nothing
	src, store, p := refusedEverywhere(t, clock, []string{"tok-B"},
		tokens.WithRotation(refresher), tokens.WithRotationWait(time.Hour))
	refresher.store = store
	tr := &tokens.Transport{Source: src, Base: p}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://partner.example/", nil)
	// Cancel once the rotation is sent: the request must stop waiting for an hour.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(refresher.rotations()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := tr.RoundTrip(req)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want the partner's 401 when the request's context ends", res.StatusCode)
	}
}

func TestRotationEvent(t *testing.T) {
	b, err := json.Marshal(tokens.Rotation{Provider: "ecard", IfToken: "c7798e96"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"action":"rotate","providers":["ecard"],"if_token":"c7798e96"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
