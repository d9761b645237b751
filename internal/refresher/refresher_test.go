package refresher

import (
	"context"
	"errors"
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
	for _, d := range oauthtest.Dialects() {
		name := string(d)
		if statuses(res)[name] != StatusRefreshed {
			t.Errorf("%s: %+v", name, res.Results)
		}
		pub := w.store.tokens[param(name)]
		st := w.srv.Stats(name)
		if len(st.Issued) != 1 || pub.AccessToken != st.Issued[0] {
			t.Errorf("%s: published %q, issued %q", name, pub.AccessToken, st.Issued)
		}
		if pub.Provider != name || pub.SecretVersion != "v1" || pub.ExpiresAt.Sub(pub.IssuedAt) != d.Lifetime() {
			t.Errorf("%s: published %+v", name, pub)
		}
	}
	writes, calls := w.store.writes, w.srv.TotalRequests()

	res, err = r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Results {
		if o.Status != StatusSkipped || !strings.HasPrefix(o.Reason, "valid until") {
			t.Errorf("second run: %+v", o)
		}
	}
	if w.store.writes != writes || w.srv.TotalRequests() != calls {
		t.Errorf("second run wrote %d and asked %d times", w.store.writes-writes, w.srv.TotalRequests()-calls)
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
				t.Fatalf("%+v", res)
			}
			if env.secrets.reads != reads || w.store.writes != writes || w.srv.TotalRequests() != calls {
				t.Errorf("idle run: %d secret reads, %d writes, %d token requests",
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
				t.Fatalf("err = %v", err)
			}
			for _, o := range res.Results {
				want := StatusRefreshed
				if o.Provider == "cardlytics" {
					want = StatusFailed
					if o.Error == "" {
						t.Error("no reason for the failure")
					}
				}
				if o.Status != want {
					t.Errorf("%s: %+v", o.Provider, o)
				}
			}
			if got := w.store.tokens[param("cardlytics")]; got != old["cardlytics"] {
				t.Errorf("failed refresh replaced the token: %+v", got)
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
		t.Fatalf("%+v", res)
	}
	for k, v := range w.store.tokens {
		if changed := v.AccessToken != before[k]; changed != (k == param("ecard")) {
			t.Errorf("%s changed: %v", k, changed)
		}
	}

	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if err != nil || len(res.Results) != 5 {
		t.Fatalf("rotate all: %v %+v", err, res)
	}

	writes := w.store.writes
	_, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"ecard", "nope"}})
	if !errors.Is(err, ErrUnknownProvider) || !strings.Contains(err.Error(), `"nope"`) || w.store.writes != writes {
		t.Fatalf("unknown provider: %v, %d writes", err, w.store.writes-writes)
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
		t.Fatalf("%+v", o)
	}
	if v := w.store.tokens[param("booking")].SecretVersion; v != "v1" {
		t.Fatalf("published with secret version %q, want the previous v1", v)
	}

	// Without a previous version the refusal stands.
	delete(w.secrets.previous, "token-refresher/booking")
	res, err = w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"booking"}})
	if !errors.Is(err, ErrFailed) || res.Results[0].Status != StatusFailed || !strings.Contains(res.Results[0].Error, "401") {
		t.Fatalf("%v %+v", err, res)
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
		t.Fatalf("%+v, published %+v", res.Results[0], w.store.tokens[param("opencard")])
	}

	// A cached secret whose version differs from the published token's makes it due.
	w.secrets.cache["token-refresher/cardlytics"] = secrets.Secret{ClientID: "id-cardlytics", ClientSecret: "secret+/=% cardlytics", VersionID: "v9"}
	res, err = r.Run(context.Background(), Request{Action: ActionRefresh})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(res); s["cardlytics"] != StatusRefreshed || s["ecard"] != StatusSkipped {
		t.Fatalf("%+v", res)
	}
}

func TestRunKeepsNewerPublishedToken(t *testing.T) {
	w := newWorld(t)
	// A published token that outlives anything the provider would issue now.
	far := tokens.Token{AccessToken: "far", Provider: "cardlytics", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(48 * time.Hour)}
	w.store.tokens[param("cardlytics")] = far
	res, err := w.refresher().Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"cardlytics"}})
	if !errors.Is(err, ErrFailed) || !strings.Contains(res.Results[0].Error, "no later than") {
		t.Fatalf("%v %+v", err, res)
	}
	if w.store.tokens[param("cardlytics")] != far {
		t.Fatal("replaced a token that expires later")
	}
}

func TestRunStoreAndSecretFailures(t *testing.T) {
	t.Run("current tokens unreadable", func(t *testing.T) {
		w := newWorld(t)
		w.store.currentErr = errors.New("throttled")
		_, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || w.srv.TotalRequests() != 0 || w.store.writes != 0 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("malformed token is replaced", func(t *testing.T) {
		w := newWorld(t)
		w.store.tokens[param("ecard")] = tokens.Token{AccessToken: "x", ExpiresAt: time.Now().Add(time.Hour), IssuedAt: time.Now()}
		w.store.malformed[param("ecard")] = tokens.ErrMalformed
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if err != nil || statuses(res)["ecard"] != StatusRefreshed {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("secret unreadable", func(t *testing.T) {
		w := newWorld(t)
		w.secrets.errs["token-refresher/ecard"] = secrets.ErrMalformed
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || statuses(res)["ecard"] != StatusFailed || statuses(res)["booking"] != StatusRefreshed {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("publish fails", func(t *testing.T) {
		w := newWorld(t)
		w.store.publishErr[param("booking")] = errors.New("access denied")
		res, err := w.refresher().Run(context.Background(), Request{Action: ActionRefresh})
		if !errors.Is(err, ErrFailed) || statuses(res)["booking"] != StatusFailed || statuses(res)["ecard"] != StatusRefreshed {
			t.Fatalf("%v %+v", err, res)
		}
	})
}

// countingClient records how many token requests run at once.
type countingClient struct {
	inFlight, peak atomic.Int32
	gate           chan struct{}
}

func (c *countingClient) Token(ctx context.Context, e oauth.Endpoint, _ oauth.Credentials) (*tokens.Token, error) {
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
			t.Error(err)
		}
	}()
	// Release the requests one by one; never more than three may be waiting.
	for range 20 {
		c.gate <- struct{}{}
	}
	<-done
	if p := c.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d, bound 3", p)
	}
	if st.writes != 20 {
		t.Fatalf("%d writes", st.writes)
	}
}

func TestFailuresSummary(t *testing.T) {
	if err := failures([]Outcome{{Provider: "a", Status: StatusRefreshed}}); err != nil {
		t.Fatalf("no failure: %v", err)
	}
	var many []Outcome
	for i := range 25 {
		many = append(many, Outcome{Provider: "p" + string(rune('a'+i)), Status: StatusFailed, Error: "token endpoint answered 503"})
	}
	many = append(many, Outcome{Provider: "ok", Status: StatusSkipped})
	err := failures(many)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "25 of 26 providers") || !strings.Contains(msg, "pa (token endpoint answered 503)") ||
		!strings.Contains(msg, "and 15 more") || strings.Contains(msg, "pk (") {
		t.Fatalf("summary: %s", msg)
	}
}
