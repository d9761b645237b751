package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

func fastClient() *oauth.Client {
	return &oauth.Client{InitialBackoff: time.Millisecond, MaxRetryAfter: time.Millisecond}
}

func param(name string) string { return "/token-refresher/tokens/" + name }

func statuses(res Result) map[string]Status {
	m := map[string]Status{}
	for _, o := range res.Results {
		m[o.Provider] = o.Status
	}
	return m
}

func TestRunRefreshesAllThenNothing(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	res, err := r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Results), len(oauthtest.Dialects()); got != want {
		t.Fatalf("first run: got %d results, want %d (one per provider): %+v", got, want, res.Results)
	}
	for _, d := range oauthtest.Dialects() {
		name := string(d)
		if got := statuses(res)[name]; got != StatusRefreshed {
			t.Errorf("%s: got status %q, want %q", name, got, StatusRefreshed)
		}
		pub := w.store.tokens[param(name)]
		st := w.srv.Stats(name)
		if len(st.Issued) != 1 || pub.AccessToken != st.Issued[0] {
			t.Errorf("%s: published %q, issued %q; want exactly one token issued and that one published", name, pub.AccessToken, st.Issued)
		}
		if pub.Provider != name || pub.SecretVersion != "v1" || pub.ExpiresAt.Sub(pub.IssuedAt) != d.Lifetime() {
			t.Errorf("%s: published provider %q, secret version %q, lifetime %v; want %q, %q, %v",
				name, pub.Provider, pub.SecretVersion, pub.ExpiresAt.Sub(pub.IssuedAt), name, "v1", d.Lifetime())
		}
	}
	writes, calls := w.store.writes, w.srv.TotalRequests()

	res, err = r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil {
		t.Fatal(err)
	}
	// A second run reports every provider, skipped because its token is still
	// valid; a run that reported nothing would hide a provider it forgot.
	if got, want := len(res.Results), len(oauthtest.Dialects()); got != want {
		t.Fatalf("second run: got %d results, want %d (one per provider): %+v", got, want, res.Results)
	}
	for _, d := range oauthtest.Dialects() {
		if got := statuses(res)[string(d)]; got != StatusSkipped {
			t.Errorf("second run, %s: got status %q, want %q", d, got, StatusSkipped)
		}
	}
	for _, o := range res.Results {
		if !strings.HasPrefix(o.Reason, "valid until") {
			t.Errorf("second run, %s: got reason %q, want one starting %q", o.Provider, o.Reason, "valid until")
		}
	}
	if w.store.writes != writes || w.srv.TotalRequests() != calls {
		t.Errorf("second run wrote %d and asked %d times, want 0 and 0", w.store.writes-writes, w.srv.TotalRequests()-calls)
	}
}

// TestRunIdleReadsOnlyTheTokens: when nothing is due, a run reads the published
// tokens and nothing else (no secret, no token request, no write), both in a warm
// function and in a new execution environment whose secret cache is empty.
func TestRunIdleReadsOnlyTheTokens(t *testing.T) {
	w := newWorld(t)
	if _, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	cold := newFakeSecrets()
	cold.current = w.secrets.current
	for _, env := range []struct {
		name    string
		secrets *fakeSecrets
	}{{"warm", w.secrets}, {"cold", cold}} {
		t.Run(env.name, func(t *testing.T) {
			reads, writes, calls := env.secrets.reads, w.store.writes, w.srv.TotalRequests()
			r := w.refresher()
			r.Secrets = env.secrets
			res, err := r.Run(context.Background(), Request{Action: ActionRefresh})
			if err != nil {
				t.Fatal(err)
			}
			if c := res.Counts(); c[StatusSkipped] != len(oauthtest.Dialects()) {
				t.Fatalf("got counts %v, want all %d skipped: %+v", c, len(oauthtest.Dialects()), res)
			}
			if env.secrets.reads != reads || w.store.writes != writes || w.srv.TotalRequests() != calls {
				t.Errorf("idle run: got %d secret reads, %d writes, %d token requests, want none",
					env.secrets.reads-reads, w.store.writes-writes, w.srv.TotalRequests()-calls)
			}
		})
	}
}

func TestRunOneFailureDoesNotStopOthers(t *testing.T) {
	faults := []oauthtest.Fault{
		{Kind: oauthtest.WrongCredentials},
		{Kind: oauthtest.ServerError},
		{Kind: oauthtest.Garbage},
		{Kind: oauthtest.Oversized},
		{Kind: oauthtest.Expired},
		{Kind: oauthtest.ErrorWith200},
		{Kind: oauthtest.Redirect},
	}
	for _, f := range faults {
		t.Run(string(f.Kind), func(t *testing.T) {
			w := newWorld(t)
			r := w.refresher()
			// Everyone has a token due in 5 minutes, so all are due.
			old := map[string]tokens.Token{}
			for _, d := range oauthtest.Dialects() {
				tk := tokens.Token{AccessToken: "old-" + string(d), TokenType: "Bearer", Provider: string(d),
					IssuedAt: time.Now().Add(-55 * time.Minute), ExpiresAt: time.Now().Add(5 * time.Minute)}
				w.store.tokens[param(string(d))] = tk
				old[string(d)] = tk
			}
			w.srv.SetFault("cardlytics", f)
			res, err := r.Run(context.Background(), Request{Action: ActionRefresh})
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "cardlytics") {
				t.Fatalf("got error %v, want one wrapping ErrFailed that names cardlytics", err)
			}
			if got, want := len(res.Results), len(oauthtest.Dialects()); got != want {
				t.Fatalf("got %d results, want %d (one per provider): %+v", got, want, res.Results)
			}
			for _, d := range oauthtest.Dialects() {
				want := StatusRefreshed
				if d == "cardlytics" {
					want = StatusFailed
				}
				if got := statuses(res)[string(d)]; got != want {
					t.Errorf("%s: got status %q, want %q", d, got, want)
				}
			}
			for _, o := range res.Results {
				if o.Provider == "cardlytics" && o.Error == "" {
					t.Error("cardlytics: got no reason for the failure, want one")
				}
			}
			if got := w.store.tokens[param("cardlytics")]; got != old["cardlytics"] {
				t.Errorf("failed refresh replaced the token: got %+v, want the old one %+v", got, old["cardlytics"])
			}
		})
	}
}

func TestRunRotate(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for k, v := range w.store.tokens {
		before[k] = v.AccessToken
	}
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || res.Results[0].Status != StatusRefreshed {
		t.Fatalf("got %+v, want one outcome, ecard %q", res, StatusRefreshed)
	}
	for k, v := range w.store.tokens {
		if changed := v.AccessToken != before[k]; changed != (k == param("ecard")) {
			t.Errorf("%s: got changed %v, want %v (only ecard's token rotated)", k, changed, !changed)
		}
	}

	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if err != nil || len(res.Results) != 5 {
		t.Fatalf("rotate all: got err %v, %d outcomes (%+v), want nil and 5", err, len(res.Results), res)
	}

	writes := w.store.writes
	_, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard", "nope"}})
	if !errors.Is(err, ErrUnknownProvider) || !strings.Contains(err.Error(), `"nope"`) || w.store.writes != writes {
		t.Fatalf("unknown provider: got err %v, %d writes, want errors.Is(err, ErrUnknownProvider) naming \"nope\" and no write", err, w.store.writes-writes)
	}
}

func TestRunFallsBackToPreviousSecret(t *testing.T) {
	w := newWorld(t)
	// The secret was rotated in Secrets Manager, but the provider still knows the old one.
	old := w.secrets.current["token-refresher/booking"]
	w.secrets.previous["token-refresher/booking"] = old
	w.secrets.current["token-refresher/booking"] = secrets.Secret{ClientID: old.ClientID, ClientSecret: "new", VersionID: "v2"}
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"booking"}})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Results[0]
	if o.Status != StatusRefreshed || !strings.Contains(o.Note, "AWSPREVIOUS") {
		t.Fatalf("got %+v, want status %q with a note naming AWSPREVIOUS", o, StatusRefreshed)
	}
	if v := w.store.tokens[param("booking")].SecretVersion; v != "v1" {
		t.Fatalf("published with secret version %q, want the previous v1", v)
	}

	// Without a previous version the refusal stands.
	delete(w.secrets.previous, "token-refresher/booking")
	res, err = w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"booking"}})
	if !errors.Is(err, ErrFailed) || res.Results[0].Status != StatusFailed || !strings.Contains(res.Results[0].Error, "401") {
		t.Fatalf("got err %v, %+v, want errors.Is(err, ErrFailed) and booking %q with a 401", err, res, StatusFailed)
	}
}

func TestRunPicksUpRotatedSecret(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	// The client secret changes at the provider and in Secrets Manager; the cached
	// copy is stale. A refused refresh reads the secret again and succeeds.
	w.srv.SetCredentials("opencard", "id-opencard", "rotated")
	w.secrets.current["token-refresher/opencard"] = secrets.Secret{ClientID: "id-opencard", ClientSecret: "rotated", VersionID: "v2"}
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"opencard"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Results[0].Note != "" || w.store.tokens[param("opencard")].SecretVersion != "v2" {
		t.Fatalf("got %+v, published %+v, want no note and secret version v2", res.Results[0], w.store.tokens[param("opencard")])
	}

	// A cached secret whose version differs from the published token's makes it due.
	w.secrets.cache["token-refresher/cardlytics"] = secrets.Secret{ClientID: "id-cardlytics", ClientSecret: "secret+/=% cardlytics", VersionID: "v9"}
	res, err = r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(res); s["cardlytics"] != StatusRefreshed || s["ecard"] != StatusSkipped {
		t.Fatalf("got %v, want cardlytics %q and ecard %q", s, StatusRefreshed, StatusSkipped)
	}
}

// TestRunNeverShortensOnSchedule: a scheduled refresh keeps a published token that
// expires later than the one the provider just issued.
func TestRunNeverShortensOnSchedule(t *testing.T) {
	w := newWorld(t)
	// A 48 h token in its refresh window (8 h left of 48): due, but it outlives the
	// 1 h token the provider issues now.
	now := time.Now()
	long := tokens.Token{AccessToken: "long", TokenType: "Bearer", Provider: "cardlytics", IssuedAt: now.Add(-40 * time.Hour), ExpiresAt: now.Add(8 * time.Hour)}
	w.store.tokens[param("cardlytics")] = long
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
	if !errors.Is(err, ErrFailed) || !strings.Contains(outcome(res, "cardlytics").Error, "no later than") {
		t.Fatalf("got err %v, %+v, want errors.Is(err, ErrFailed) and cardlytics failed with \"no later than\"", err, res)
	}
	if w.store.tokens[param("cardlytics")] != long {
		t.Fatalf("got published %+v, want the later-expiring %+v kept", w.store.tokens[param("cardlytics")], long)
	}
}

// TestRotateAlwaysReplaces: a rotation publishes the valid token it got, whatever
// the published one claims: a far expiry (a unit mistake, a JWT exp in year 9999)
// must not make a token irreplaceable.
func TestRotateAlwaysReplaces(t *testing.T) {
	w := newWorld(t)
	far := tokens.Token{AccessToken: "far", TokenType: "Bearer", Provider: "cardlytics", IssuedAt: time.Now(),
		ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}
	w.store.tokens[param("cardlytics")] = far
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"cardlytics"}})
	if err != nil || res.Results[0].Status != StatusRefreshed {
		t.Fatalf("got err %v, %+v, want nil and %q", err, res, StatusRefreshed)
	}
	pub := w.store.tokens[param("cardlytics")]
	if st := w.srv.Stats("cardlytics"); pub.AccessToken != st.Issued[len(st.Issued)-1] || pub.ExpiresAt.Sub(pub.IssuedAt) != time.Hour {
		t.Fatalf("got published %v, want the last issued token with a 1h lifetime", pub)
	}
}

// TestAnotherProvidersTokenIsDue: a parameter holding a token whose provider is
// another provider's is refreshed, not skipped.
func TestAnotherProvidersTokenIsDue(t *testing.T) {
	w := newWorld(t)
	now := time.Now()
	w.store.tokens[param("ecard")] = tokens.Token{AccessToken: "x", TokenType: "Bearer", Provider: "booking",
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil || outcome(res, "ecard").Status != StatusRefreshed || w.store.tokens[param("ecard")].Provider != "ecard" {
		t.Fatalf("got err %v, %+v, want nil and ecard %q with ecard's token", err, res, StatusRefreshed)
	}
}

// TestMaxLifetimeCaps: an answer claiming a lifetime beyond max_lifetime is
// published as living max_lifetime, with a note.
func TestMaxLifetimeCaps(t *testing.T) {
	w := newWorld(t, "max_lifetime: 30m")
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"cardlytics"}})
	if err != nil || !strings.Contains(res.Results[0].Note, "more than max_lifetime 30m0s") {
		t.Fatalf("got err %v, %+v, want nil and a note \"more than max_lifetime 30m0s\"", err, res)
	}
	if pub := w.store.tokens[param("cardlytics")]; pub.ExpiresAt.Sub(pub.IssuedAt) != 30*time.Minute {
		t.Fatalf("got published lifetime %s, want 30m0s", pub.ExpiresAt.Sub(pub.IssuedAt))
	}
}

// TestFallbackDoesNotChurn: after a refresh that had to use AWSPREVIOUS, warm runs
// neither refresh again nor read the secret again until the token is due or the
// secret changes again, and every run reports the provider as degraded.
func TestFallbackDoesNotChurn(t *testing.T) {
	w := newWorld(t)
	var metrics bytes.Buffer
	r := w.refresher()
	r.Metrics = &Metrics{Out: &metrics, Namespace: "NS"}
	old := w.secrets.current["token-refresher/booking"]
	w.secrets.previous["token-refresher/booking"] = old
	w.secrets.current["token-refresher/booking"] = secrets.Secret{ClientID: old.ClientID, ClientSecret: "new", VersionID: "v2"}
	if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
		t.Fatal(err)
	}
	if pub := w.store.tokens[param("booking")]; pub.SecretVersion != "v1" || pub.RefusedSecretVersion != "v2" {
		t.Fatalf("got published %+v, want secret version v1, refused v2", pub)
	}
	requests, reads := w.srv.Stats("booking").Requests, w.secrets.reads
	for run := range 3 { // warm runs: the cache holds the refused current version
		metrics.Reset()
		res, err := r.Run(context.Background(), Request{Action: ActionRefresh})
		if err != nil {
			t.Fatal(err)
		}
		o := outcome(res, "booking")
		if o.Status != StatusSkipped || !strings.Contains(o.Note, "previous client secret") {
			t.Fatalf("run %d: got %+v, want %q with a note on the previous client secret", run, o, StatusSkipped)
		}
		if !strings.Contains(metrics.String(), `"Degraded":1`) {
			t.Fatalf("run %d: got metrics\n%s\nwant \"Degraded\":1", run, metrics.String())
		}
	}
	if n := w.srv.Stats("booking").Requests; n != requests || w.secrets.reads != reads {
		t.Fatalf("warm runs: got %d token requests and %d secret reads, want none", n-requests, w.secrets.reads-reads)
	}
	// The secret changes again: the next run refreshes with it, and is healthy again.
	w.srv.SetCredentials("booking", old.ClientID, "newer")
	w.secrets.cache["token-refresher/booking"] = secrets.Secret{ClientID: old.ClientID, ClientSecret: "newer", VersionID: "v3"}
	res, err := r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil || outcome(res, "booking").Status != StatusRefreshed || outcome(res, "booking").Note != "" {
		t.Fatalf("got err %v, %+v, want nil and booking %q without a note", err, res, StatusRefreshed)
	}
	if pub := w.store.tokens[param("booking")]; pub.SecretVersion != "v3" || pub.RefusedSecretVersion != "" {
		t.Fatalf("got published %+v, want secret version v3, none refused", pub)
	}
}

// TestRunReturnsBeforeTheDeadline: with a provider that hangs and one that answers
// 503 asking for a long wait, Run returns before its context's deadline, with every
// provider in the result: the hanging and the throttled ones failed with their own
// reason, the rest refreshed, and nothing started in the reserve.
func TestRunReturnsBeforeTheDeadline(t *testing.T) {
	w := newWorld(t)
	w.srv.SetFault("booking", oauthtest.Fault{Kind: oauthtest.Slow})
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 503, RetryAfter: "30"})
	r := w.refresher()
	r.Client = &oauth.Client{MaxRetryAfter: time.Minute, RequestTimeout: time.Minute}
	r.Reserve = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	res, err := r.Run(ctx, Request{Action: ActionRefresh})
	if returned := time.Now(); !returned.Before(deadline) {
		t.Fatalf("Run returned %s after its deadline, want before it", returned.Sub(deadline))
	}
	if !errors.Is(err, ErrFailed) || len(res.Results) != 5 {
		t.Fatalf("got err %v, %d outcomes (%+v), want errors.Is(err, ErrFailed) and 5", err, len(res.Results), res)
	}
	if o := outcome(res, "booking"); o.Status != StatusFailed || !strings.Contains(o.Error, "no answer") || strings.Contains(o.Error, "context deadline exceeded") {
		t.Errorf("hanging provider: got %+v, want %q with \"no answer\", not \"context deadline exceeded\"", o, StatusFailed)
	}
	if o := outcome(res, "cardlytics"); o.Status != StatusFailed || !strings.Contains(o.Error, "503") {
		t.Errorf("throttled provider: got %+v, want %q with a 503", o, StatusFailed)
	}
	for _, name := range []string{"ecard", "opencard", "checkissuing"} {
		if o := outcome(res, name); o.Status != StatusRefreshed {
			t.Errorf("%s: got %+v, want %q", name, o, StatusRefreshed)
		}
	}
}

// TestRunReportsUnstartedProviders: providers still waiting for a slot when the
// run's time is up fail with that reason, and no request is sent for them.
func TestRunReportsUnstartedProviders(t *testing.T) {
	w := newWorld(t)
	for _, d := range oauthtest.Dialects() {
		w.srv.SetFault(string(d), oauthtest.Fault{Kind: oauthtest.Slow})
	}
	r := w.refresher()
	r.MaxConcurrency = 1
	r.Reserve = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, _ := r.Run(ctx, Request{Action: ActionRefresh})
	var unstarted int
	for _, o := range res.Results {
		if o.Status != StatusFailed {
			t.Errorf("got %+v, want %q", o, StatusFailed)
		}
		if strings.Contains(o.Error, "not attempted") {
			unstarted++
		}
	}
	if unstarted != 4 || w.srv.TotalRequests() != 1 {
		t.Fatalf("got %d not attempted, %d requests, want 4 and 1: %+v", unstarted, w.srv.TotalRequests(), res)
	}
}

// TestTextFromOutsideIsBounded: a rotate naming many huge unknown providers, and a
// provider whose error is huge, give bounded errors and outcomes.
func TestTextFromOutsideIsBounded(t *testing.T) {
	w := newWorld(t)
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("%03d", i)+strings.Repeat("x", 1<<16))
	}
	_, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: names})
	if !errors.Is(err, ErrUnknownProvider) || len(err.Error()) > 2000 || !strings.Contains(err.Error(), "and 90 more") {
		t.Fatalf("unknown providers: got %d bytes: %.300s, want errors.Is(err, ErrUnknownProvider), at most 2000 bytes, \"and 90 more\"", len(err.Error()), err)
	}
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.HugeStatusLine})
	w.srv.SetFault("ecard", oauthtest.Fault{Kind: oauthtest.EchoError})
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if len(err.Error()) > 2*maxNamed*maxText {
		t.Fatalf("got an invocation error of %d bytes, want at most %d", len(err.Error()), 2*maxNamed*maxText)
	}
	for _, o := range res.Results {
		if len(o.Error) > maxText+len("…") {
			t.Fatalf("%s: got an error of %d bytes, want at most %d", o.Provider, len(o.Error), maxText+len("…"))
		}
	}

	// Errors from AWS are text from outside too: a secret read, a token write and a
	// read of the tokens that fail with 1 MiB of text, and a queue that refuses.
	huge := errors.New(strings.Repeat("e", 1<<20))
	w = newWorld(t)
	w.secrets.errs["token-refresher/ecard"] = huge
	w.store.publishErr[param("booking")] = huge
	r := w.refresher()
	r.Queue = &fakeQueue{fail: func(int) bool { return true }, failWith: huge}
	check := func(what string, res Result, err error) {
		t.Helper()
		if err == nil || len(err.Error()) > 2*maxNamed*maxText {
			t.Fatalf("%s: got an invocation error %v, want one of at most %d bytes", what, err != nil, 2*maxNamed*maxText)
		}
		for _, o := range res.Results {
			if len(o.Error) > maxText+64 {
				t.Fatalf("%s: %s: got an error of %d bytes, want at most %d", what, o.Provider, len(o.Error), maxText+64)
			}
		}
	}
	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard", "booking"}})
	check("secret read and write", res, err)
	res, err = r.Run(context.Background(), Request{Action: ActionRefresh, Trigger: TriggerSchedule})
	check("queue", res, err)
	w.store.currentErr = huge
	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard"}})
	check("token read", res, err)
}

func outcome(res Result, provider string) Outcome {
	for _, o := range res.Results {
		if o.Provider == provider {
			return o
		}
	}
	return Outcome{}
}

func TestRunStoreAndSecretFailures(t *testing.T) {
	t.Run("current tokens unreadable", func(t *testing.T) {
		w := newWorld(t)
		w.store.currentErr = errors.New("throttled")
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || w.srv.TotalRequests() != 0 || w.store.writes != 0 {
			t.Fatalf("got err = %v, %d token requests, %d writes, want errors.Is(err, ErrFailed) and none", err, w.srv.TotalRequests(), w.store.writes)
		}
		// Every provider is reported failed, so alarms and metrics see each.
		for _, o := range res.Results {
			if o.Status != StatusFailed || !strings.Contains(o.Error, "throttled") {
				t.Errorf("got %+v, want %q naming \"throttled\"", o, StatusFailed)
			}
		}
		if len(res.Results) != 5 {
			t.Errorf("got %d outcomes, want 5", len(res.Results))
		}
	})
	t.Run("malformed token is replaced", func(t *testing.T) {
		w := newWorld(t)
		w.store.tokens[param("ecard")] = tokens.Token{AccessToken: "x", ExpiresAt: time.Now().Add(time.Hour), IssuedAt: time.Now()}
		w.store.malformed[param("ecard")] = tokens.ErrMalformed
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if err != nil || statuses(res)["ecard"] != StatusRefreshed {
			t.Fatalf("got err %v, %+v, want nil and ecard %q", err, res, StatusRefreshed)
		}
	})
	t.Run("secret unreadable", func(t *testing.T) {
		w := newWorld(t)
		w.secrets.errs["token-refresher/ecard"] = secrets.ErrMalformed
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || statuses(res)["ecard"] != StatusFailed || statuses(res)["booking"] != StatusRefreshed {
			t.Fatalf("got err %v, %+v, want errors.Is(err, ErrFailed), ecard %q, booking %q", err, res, StatusFailed, StatusRefreshed)
		}
	})
	t.Run("publish fails", func(t *testing.T) {
		w := newWorld(t)
		w.store.publishErr[param("booking")] = errors.New("access denied")
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || statuses(res)["booking"] != StatusFailed || statuses(res)["ecard"] != StatusRefreshed {
			t.Fatalf("got err %v, %+v, want errors.Is(err, ErrFailed), booking %q, ecard %q", err, res, StatusFailed, StatusRefreshed)
		}
	})
}

// countingClient records how many token requests run at once.
type countingClient struct {
	inFlight, peak atomic.Int32
	gate           chan struct{}
}

func (c *countingClient) Token(ctx context.Context, e oauth.Endpoint, _ oauth.Credentials, _ ...oauth.TokenOption) (*tokens.Token, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		old := c.peak.Load()
		if n <= old || c.peak.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case <-c.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := time.Now()
	return &tokens.Token{AccessToken: "t" + strings.ReplaceAll(e.TokenURL.Path, "/", "-"), TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
}

func (c *countingClient) Verify(context.Context, oauth.Check, *tokens.Token) error { return nil }

func TestRunBoundsConcurrency(t *testing.T) {
	var doc strings.Builder
	doc.WriteString("providers:\n")
	fs := newFakeSecrets()
	for i := range 20 {
		name := "p" + string(rune('a'+i))
		doc.WriteString("  - {name: " + name + ", token_url: 'http://127.0.0.1:1/" + name + "', secret_id: s/" + name + "}\n")
		fs.current["s/"+name] = secrets.Secret{ClientID: "a", ClientSecret: "b"}
	}
	reg, err := registry.Load(strings.NewReader(doc.String()), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &countingClient{gate: make(chan struct{})}
	st := newFakeStore()
	r := &Refresher{Providers: reg, Secrets: fs, Store: st, Client: c, MaxConcurrency: 3}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := r.Run(context.Background(), Request{Action: ActionRefresh}); err != nil {
			t.Errorf("got err %v, want nil", err)
		}
	}()
	// Release the requests one by one; never more than three may be waiting.
	for range 20 {
		c.gate <- struct{}{}
	}
	<-done
	if p := c.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("got peak concurrency %d, want 1 to 3", p)
	}
	if st.writes != 20 {
		t.Fatalf("got %d writes, want 20", st.writes)
	}
}

func TestFailuresSummary(t *testing.T) {
	if err := failures([]Outcome{{Provider: "a", Status: StatusRefreshed}}); err != nil {
		t.Fatalf("no failure: got %v, want nil", err)
	}
	var many []Outcome
	for i := range 25 {
		many = append(many, Outcome{Provider: "p" + string(rune('a'+i)), Status: StatusFailed, Error: "token endpoint answered 503"})
	}
	many = append(many, Outcome{Provider: "ok", Status: StatusSkipped})
	err := failures(many)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got err = %v, want errors.Is(err, ErrFailed)", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "25 of 26 providers") || !strings.Contains(msg, "pa (token endpoint answered 503)") ||
		!strings.Contains(msg, "and 15 more") || strings.Contains(msg, "pk (") {
		t.Fatalf("got summary %q, want \"25 of 26 providers\", pa's reason, \"and 15 more\", and no pk", msg)
	}
}

// TestDryRunPublishesNothing: a dry-run rotation obtains a token from each named
// provider and reports it (type, lifetime, scope, JWT claims, fingerprint) without
// publishing it, recording anything, or putting the token in the result.
func TestDryRunPublishesNothing(t *testing.T) {
	w := newWorld(t)
	r := w.refresher()
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard", "cardlytics"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.store.writes != 0 || w.state.runWrites != 0 || w.state.healthWrites != 0 {
		t.Fatalf("a dry run: got %d tokens, %d run records, %d health records written, want none", w.store.writes, w.state.runWrites, w.state.healthWrites)
	}
	b, _ := json.Marshal(res)
	for _, name := range []string{"ecard", "cardlytics"} {
		o := outcome(res, name)
		issued := w.srv.Stats(name).Issued
		if o.Status != StatusChecked || o.Probe == nil || len(issued) != 1 || o.Probe.Fingerprint != tokens.Fingerprint(issued[0]) {
			t.Fatalf("%s: got %+v, want %q with a probe of the one token issued", name, o, StatusChecked)
		}
		if strings.Contains(string(b), issued[0]) {
			t.Fatalf("got a result holding %s's token, want only its fingerprint", name)
		}
	}
	ecard := outcome(res, "ecard").Probe
	if ecard.Lifetime != 86400 || ecard.JWT == nil || ecard.JWT.Exp == "" || ecard.JWT.Issuer == "" || ecard.Scope == "" {
		t.Fatalf("got ecard probe %+v %+v, want lifetime 86400, a scope, JWT exp and issuer", ecard, ecard.JWT)
	}
	if p := outcome(res, "cardlytics").Probe; p.JWT != nil || p.Lifetime != 3600 {
		t.Fatalf("got cardlytics probe %+v, want lifetime 3600 and no JWT", p)
	}
}

// TestVerifyBeforePublish: with a verify setting, a token is published only when
// the partner's API accepts it; a refused one keeps the old token and fails the
// provider with the answer's status.
func TestVerifyBeforePublish(t *testing.T) {
	w := newWorld(t)
	api := w.srv.APIURL("cardlytics") + "/v1/ping"
	r := w.refresher()
	if _, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	// Verify every provider against cardlytics' partner API, which accepts only
	// cardlytics' latest token: cardlytics passes, the others are refused.
	reg, err := registry.Load(strings.NewReader(w.registryYAML("verify: {url: '"+api+"', expect: [200, 204]}")), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Providers = reg
	before := w.store.tokens[param("ecard")]
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"cardlytics", "ecard"}})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got err = %v, want errors.Is(err, ErrFailed)", err)
	}
	if o := outcome(res, "cardlytics"); o.Status != StatusRefreshed {
		t.Fatalf("accepted: got %+v, want %q", o, StatusRefreshed)
	}
	if o := outcome(res, "ecard"); o.Status != StatusFailed || !strings.Contains(o.Error, "answered 401, want 200 or 204") {
		t.Fatalf("refused: got %+v, want %q with \"answered 401, want 200 or 204\"", o, StatusFailed)
	}
	if w.store.tokens[param("ecard")] != before {
		t.Fatalf("got published %+v, want the old %+v: a token the partner refused was published", w.store.tokens[param("ecard")], before)
	}
}
