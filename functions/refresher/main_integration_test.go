//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// stack is the function wired to LocalStack and to fake providers of the five
// seed dialects, configured only by a registry file.
type stack struct {
	t       *testing.T
	cfg     aws.Config
	srv     *oauthtest.Server
	sm      *secretsmanager.Client
	ssm     *ssm.Client
	prefix  string
	regFile string
	env     env
	out     *bytes.Buffer // logs
	metrics *bytes.Buffer // EMF lines
	h       *refresher.Handler
}

func newStack(t *testing.T) *stack {
	t.Helper()
	cfg := awstest.Config(t)
	s := &stack{t: t, cfg: cfg, srv: oauthtest.NewServer(), sm: secretsmanager.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg),
		prefix: awstest.Parameters(t, cfg, "it-") + "/tokens", out: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	t.Cleanup(s.srv.Close)

	var reg strings.Builder
	reg.WriteString("providers:\n")
	for _, d := range oauthtest.Dialects() {
		name := string(d)
		// The shipped names, so the sample events in events/ apply as they are.
		secretID := "token-refresher/" + name
		u := s.srv.Add(oauthtest.Provider{Name: name, Dialect: d, ClientID: "id-" + name, ClientSecret: "secret+/=% " + name})
		s.putSecret(secretID, "id-"+name, "secret+/=% "+name)
		reg.WriteString(registry.EntryYAML(name, secretID, d.Endpoint(u)))
	}
	s.regFile = filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(s.regFile, []byte(reg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	s.env, err = loadEnv(s.getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(s.out, nil))
	s.h = newHandler(cfg, s.env, log, s.metrics)
	return s
}

func (s *stack) getenv(k string) string {
	return map[string]string{"PROVIDERS_FILE": s.regFile, "TOKEN_PARAMETER_PREFIX": s.prefix,
		"STATE_PARAMETER_PREFIX": strings.TrimSuffix(s.prefix, "/tokens") + "/state"}[k]
}

// putSecret stores credentials as the secret id and returns the new version's id.
func (s *stack) putSecret(id, clientID, clientSecret string) string {
	s.t.Helper()
	return awstest.PutSecret(s.t, s.sm, id, clientID, clientSecret)
}

// event runs the handler with a sample event from events/.
func (s *stack) event(file string) (refresher.Result, error) {
	s.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		s.t.Fatal(err)
	}
	return s.h.Handle(context.Background(), raw)
}

type published struct {
	token   tokens.Token
	version int64
	typ     ssmtypes.ParameterType
}

func (s *stack) published(name string) (published, bool) {
	s.t.Helper()
	out, err := s.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(s.prefix + "/" + name), WithDecryption: aws.Bool(true)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return published{}, false
	}
	if err != nil {
		s.t.Fatal(err)
	}
	tok, err := tokens.Parse([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		s.t.Fatal(err)
	}
	return published{token: tok, version: out.Parameter.Version, typ: out.Parameter.Type}, true
}

func byProvider(res refresher.Result) map[string]refresher.Outcome {
	m := map[string]refresher.Outcome{}
	for _, o := range res.Results {
		m[o.Provider] = o
	}
	return m
}

func TestIntegrationRefresher(t *testing.T) {
	s := newStack(t)

	t.Run("first run publishes every seed dialect", func(t *testing.T) {
		res, err := s.event("scheduled.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range oauthtest.Dialects() {
			name := string(d)
			if o := byProvider(res)[name]; o.Status != refresher.StatusRefreshed {
				t.Errorf("%s: %+v", name, o)
			}
			p, ok := s.published(name)
			if !ok {
				t.Fatalf("%s: nothing published", name)
			}
			issued := s.srv.Stats(name).Issued
			if p.typ != ssmtypes.ParameterTypeSecureString || len(issued) != 1 || p.token.AccessToken != issued[0] {
				t.Errorf("%s: published a %s holding another token than the one issued", name, p.typ)
			}
			if life := p.token.ExpiresAt.Sub(p.token.IssuedAt); life != d.Lifetime() || p.token.Provider != name || p.token.SecretVersion == "" {
				t.Errorf("%s: published %+v (lifetime %s)", name, p.token, life)
			}
		}
	})

	t.Run("second run asks no provider and writes nothing", func(t *testing.T) {
		calls := s.srv.TotalRequests()
		before := map[string]int64{}
		for _, d := range oauthtest.Dialects() {
			p, _ := s.published(string(d))
			before[string(d)] = p.version
		}
		res, err := s.event("refresh.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Results {
			if o.Status != refresher.StatusSkipped {
				t.Errorf("%+v", o)
			}
			if p, _ := s.published(o.Provider); p.version != before[o.Provider] {
				t.Errorf("%s rewritten", o.Provider)
			}
		}
		if n := s.srv.TotalRequests() - calls; n != 0 {
			t.Errorf("%d provider calls", n)
		}
	})

	t.Run("rotate one changes only that token", func(t *testing.T) {
		before := map[string]published{}
		for _, d := range oauthtest.Dialects() {
			before[string(d)], _ = s.published(string(d))
		}
		res, err := s.event("rotate-one.json")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != 1 || res.Results[0].Provider != "ecard" || res.Results[0].Status != refresher.StatusRefreshed {
			t.Fatalf("%+v", res)
		}
		for name, b := range before {
			p, _ := s.published(name)
			if changed := p.token.AccessToken != b.token.AccessToken; changed != (name == "ecard") {
				t.Errorf("%s changed: %v", name, changed)
			}
		}
	})

	t.Run("rotate without providers is refused", func(t *testing.T) {
		calls := s.srv.TotalRequests()
		_, err := s.h.Handle(context.Background(), json.RawMessage(`{"action":"rotate"}`))
		if !errors.Is(err, refresher.ErrUnsupportedEvent) || s.srv.TotalRequests() != calls {
			t.Fatalf("err = %v", err)
		}
	})

	faults := []struct {
		fault  oauthtest.Fault
		reason string
	}{
		{oauthtest.Fault{Kind: oauthtest.WrongCredentials}, "token endpoint answered 401"},
		{oauthtest.Fault{Kind: oauthtest.ServerError, Status: 503}, "token endpoint answered 503"},
		{oauthtest.Fault{Kind: oauthtest.Garbage}, "not JSON"},
		{oauthtest.Fault{Kind: oauthtest.Oversized}, "exceeds"},
		{oauthtest.Fault{Kind: oauthtest.Expired}, "expired"},
	}
	for _, f := range faults {
		t.Run("provider fault "+string(f.fault.Kind), func(t *testing.T) {
			old, _ := s.published("cardlytics")
			s.srv.SetFault("cardlytics", f.fault)
			defer s.srv.SetFault("cardlytics", oauthtest.Fault{})
			res, err := s.event("rotate-all.json")
			if !errors.Is(err, refresher.ErrFailed) || !strings.Contains(err.Error(), "cardlytics") || !strings.Contains(err.Error(), f.reason) {
				t.Fatalf("err = %v", err)
			}
			for name, o := range byProvider(res) {
				want := refresher.StatusRefreshed
				if name == "cardlytics" {
					want = refresher.StatusFailed
				}
				if o.Status != want {
					t.Errorf("%s: %+v", name, o)
				}
			}
			if p, _ := s.published("cardlytics"); p.token != old.token || p.version != old.version {
				t.Error("the failed provider's token was replaced")
			}
		})
	}

	t.Run("a secret changed in Secrets Manager is picked up", func(t *testing.T) {
		s.srv.SetCredentials("ecard", "id-ecard", "rotated-secret")
		version := s.putSecret("token-refresher/ecard", "id-ecard", "rotated-secret")
		res, err := s.event("secret-changed.json")
		if err != nil {
			t.Fatal(err)
		}
		o := byProvider(res)["ecard"]
		if len(res.Results) != 1 || o.Status != refresher.StatusRefreshed || o.Note != "" {
			t.Fatalf("%+v", res)
		}
		if p, _ := s.published("ecard"); p.token.SecretVersion != version {
			t.Fatalf("published with secret version %s, want %s", p.token.SecretVersion, version)
		}
	})

	t.Run("a secret rotated before the provider knows it falls back to AWSPREVIOUS", func(t *testing.T) {
		s.putSecret("token-refresher/booking", "id-booking", "not-yet-known")
		res, err := s.event("rotate-all.json")
		if err != nil {
			t.Fatal(err)
		}
		o := byProvider(res)["booking"]
		if o.Status != refresher.StatusRefreshed || !strings.Contains(o.Note, "AWSPREVIOUS") {
			t.Fatalf("%+v", o)
		}
	})

	t.Run("nothing secret was printed", func(t *testing.T) {
		text := s.out.String() + s.metrics.String()
		for _, d := range oauthtest.Dialects() {
			for _, tok := range s.srv.Stats(string(d)).Issued {
				if strings.Contains(text, tok) {
					t.Errorf("a %s token was printed", d)
				}
			}
			if strings.Contains(text, "secret+/=% "+string(d)) {
				t.Errorf("the %s client secret was printed", d)
			}
		}
		if strings.Contains(text, "rotated-secret") || strings.Contains(text, "not-yet-known") {
			t.Error("a rotated client secret was printed")
		}
	})
}

// TestIntegrationCommand runs the command as a user does, `go run ./functions/refresher
// -event FILE`: the result on stdout, exit status 0, then 1 when a provider fails,
// 2 for a bad setting; -timeout bounds the run as Lambda's timeout would.
func TestIntegrationCommand(t *testing.T) {
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "refresher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(event string, args ...string) (refresher.Result, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-event", filepath.Join("..", "..", "events", event)}, args...)...)
		cmd.Env = append(os.Environ(), "PROVIDERS_FILE="+s.regFile, "TOKEN_PARAMETER_PREFIX="+s.prefix)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var res refresher.Result
		if code == 2 {
			return res, stderr.String(), code
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("stdout is not the result JSON: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		return res, stderr.String(), code
	}
	res, stderr, code := run("scheduled.json")
	if code != 0 || len(res.Results) != 5 {
		t.Fatalf("exit %d, %+v\n%s", code, res, stderr)
	}
	s.srv.SetFault("opencard", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	res, stderr, code = run("rotate-all.json")
	if code != 1 || byProvider(res)["opencard"].Status != refresher.StatusFailed || !strings.Contains(stderr, "opencard") {
		t.Fatalf("exit %d, %+v\n%s", code, res, stderr)
	}

	// A provider that never answers, and a run of 8 s: the result comes before the
	// deadline, naming it.
	s.srv.SetFault("opencard", oauthtest.Fault{Kind: oauthtest.Slow})
	res, stderr, code = run("rotate-all.json", "-timeout", "8s")
	if o := byProvider(res)["opencard"]; code != 1 || o.Status != refresher.StatusFailed || !strings.Contains(o.Error, "ran out") {
		t.Fatalf("exit %d, %+v\n%s", code, o, stderr)
	}
	s.srv.SetFault("opencard", oauthtest.Fault{})
	if _, stderr, code = run("rotate-all.json", "-timeout", "5s"); code != 2 || !strings.Contains(stderr, "-timeout") {
		t.Fatalf("-timeout 5s: exit %d\n%s", code, stderr)
	}
}

// TestIntegrationOverlappingScheduledRuns: with no reserved concurrency (the
// template's ReservedConcurrency 0), two scheduled runs may run at once in two
// execution environments. The store's conditional writes are what keeps that safe:
// both runs succeed, every provider ends with a valid token one of them obtained,
// and no provider is asked more than once per run.
func TestIntegrationOverlappingScheduledRuns(t *testing.T) {
	s := newStack(t)
	second := newHandler(s.cfg, s.env, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)), &bytes.Buffer{})
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		res refresher.Result
		err error
	}
	done := make(chan run, 2)
	for _, h := range []*refresher.Handler{s.h, second} {
		go func() {
			res, err := h.Handle(context.Background(), raw)
			done <- run{res, err}
		}()
	}
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatalf("got %v, want both overlapping runs to succeed; results %+v", r.err, r.res.Results)
		}
		for _, o := range r.res.Results {
			if o.Status != refresher.StatusRefreshed && o.Status != refresher.StatusSkipped {
				t.Errorf("got %s %s (%s), want refreshed or skipped", o.Provider, o.Status, o.Error)
			}
		}
	}
	for _, d := range oauthtest.Dialects() {
		name := string(d)
		p, ok := s.published(name)
		if !ok {
			t.Fatalf("got no token for %s, want one", name)
		}
		st := s.srv.Stats(name)
		if !slices.Contains(st.Issued, p.token.AccessToken) || !p.token.ExpiresAt.After(time.Now()) {
			t.Errorf("got %s's published token %s expiring %s, want a valid one the provider issued", name, p.token, p.token.ExpiresAt)
		}
		if st.Requests > 2 {
			t.Errorf("got %d token requests for %s, want at most one per run", st.Requests, name)
		}
	}
}
