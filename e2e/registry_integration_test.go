//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// TestIntegrationRegistryFlows deploys a stack with no providers, in both modes, and
// changes its registry only as an operator does, with tokenctl and make providers,
// while the stack's own schedule runs it: with no providers the scheduled runs are
// healthy and tokenctl status says "no providers"; providers put are published by
// the schedule; a file with one invalid entry is refused, naming file, provider,
// field and line, and nothing is stored; a provider removed gets no more token
// requests while its published token stays.
func TestIntegrationRegistryFlows(t *testing.T) {
	t.Parallel()
	tokenctl := buildTokenctl(t)
	for _, mode := range []string{"single", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r := newRegistryFlow(t, mode, tokenctl)
			r.noProviders(t)
			r.putPublished(t)
			r.invalidRefused(t)
			r.removed(t)
		})
	}
}

// registryFlow is a stack deployed with no providers, and the operator's tool.
type registryFlow struct {
	*path
	tokenctl string
	bucket   string
	s3       *s3.Client
	added    map[string]bool // providers with a fake endpoint and a secret
}

// buildTokenctl builds the operator's tool once, for every stack of a test.
func buildTokenctl(tb testing.TB) string {
	tb.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	tokenctl := filepath.Join(tb.TempDir(), "tokenctl")
	build := exec.Command("go", "build", "-o", tokenctl, "./cmd/tokenctl")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/tokenctl: %v\n%s", err, out)
	}
	return tokenctl
}

// newRegistryFlow deploys a stack of mode with no providers.
func newRegistryFlow(tb testing.TB, mode, tokenctl string) *registryFlow {
	r := &registryFlow{path: deploy(tb, mode, nil, ""), tokenctl: tokenctl, added: map[string]bool{}}
	r.bucket = r.stackOutput("RegistryBucket")
	r.s3 = catalog.NewClient(awstest.Config(tb))
	return r
}

// put stores file in the stack's registry with tokenctl providers put.
func (r *registryFlow) put(file string) (int, string) {
	r.t.Helper()
	return r.ctl("providers", "put", "-bucket", r.bucket, "-secret-prefix", r.secretPrefix, "-token-prefix", r.prefix, file)
}

// registryNames are the providers the flows put: both refreshed at every run
// (max_age 1s), so a run that skips one is seen at once.
var registryNames = []string{"alpha", "beta"}

// ctl runs tokenctl with args and returns its exit code and everything it printed.
func (r *registryFlow) ctl(args ...string) (int, string) {
	r.t.Helper()
	return r.command(exec.Command(r.tokenctl, args...))
}

// makeProviders runs make providers ENV=local for this stack with file.
func (r *registryFlow) makeProviders(file string) (int, string) {
	r.t.Helper()
	cmd := exec.Command("make", "-s", "providers", "ENV=local", "STACK_NAME="+r.stack, "PROVIDERS="+file)
	cmd.Dir = r.repo
	return r.command(cmd)
}

func (r *registryFlow) command(cmd *exec.Cmd) (int, string) {
	r.t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		r.t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// registryVersion is the registry object's current version id, "" when there is none.
func (r *registryFlow) registryVersion() string {
	r.t.Helper()
	out, err := r.s3.HeadObject(r.ctx, &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(catalog.DefaultKey)})
	if err != nil {
		return ""
	}
	return aws.ToString(out.VersionId)
}

// writeRegistry writes a providers file of the named providers' entries, each with
// more lines, and returns its path.
func (r *registryFlow) writeRegistry(name string, entries ...string) string {
	r.t.Helper()
	file := filepath.Join(r.t.TempDir(), name)
	if err := os.WriteFile(file, []byte("providers:\n"+strings.Join(entries, "")), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return file
}

// entry is a provider's registry entry, its fake endpoint and secret made on first use.
func (r *registryFlow) entry(name string, more ...string) string {
	r.t.Helper()
	u := r.srv.URL() + "/" + name + "/token"
	if !r.added[name] {
		r.added[name] = true
		u = r.srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "id-" + name, ClientSecret: "secret " + name})
		r.putSecret(name, "secret "+name)
	}
	e := registry.EntryYAML(name, r.secretPrefix+name, oauthtest.Cardlytics.Endpoint(u))
	for _, m := range more {
		e += "    " + m + "\n"
	}
	return e
}

func (r *registryFlow) requests(name string) int { return r.srv.Stats(name).Requests }

// noProviders: with no registry stored, the schedule's runs succeed with nothing
// to do, and tokenctl status says "no providers".
func (r *registryFlow) noProviders(t *testing.T) {
	if v := r.registryVersion(); v != "" {
		t.Fatalf("a stack deployed with no providers has registry version %q, want none", v)
	}
	r.eventually(3*time.Minute, `a scheduled run logging "no providers configured"`, func() bool {
		return r.logged(`"message":"no providers configured"`)
	})
	if r.loggedLine(func(l string) bool { return strings.Contains(l, `"level":"ERROR"`) }) {
		t.Errorf("a stack with no providers logged an error; want healthy runs")
	}
	if res := r.refresh(`{"detail-type":"Scheduled Event","source":"aws.events"}`); len(res.Results) != 0 {
		t.Errorf("a scheduled run with no providers: got %d results, want none", len(res.Results))
	}
	code, out := r.ctl("status", "-bucket", r.bucket, "-token-prefix", r.prefix, "-state-prefix", "/e2e-"+r.id+"/state")
	if code != 0 || strings.TrimSpace(out) != "no providers" {
		t.Errorf("tokenctl status: got exit %d and %q, want exit 0 and \"no providers\"", code, out)
	}
}

// putPublished: make providers stores two providers, and the schedule publishes both.
func (r *registryFlow) putPublished(t *testing.T) {
	var entries []string
	for _, name := range registryNames {
		entries = append(entries, r.entry(name, "max_age: 1s"))
	}
	if code, out := r.makeProviders(r.writeRegistry("providers.yaml", entries...)); code != 0 || !strings.Contains(out, "added alpha, beta") {
		t.Fatalf("make providers: got exit %d and %q, want exit 0 and \"added alpha, beta\"", code, out)
	}
	r.eventually(3*time.Minute, "both providers published by the schedule", func() bool {
		for _, name := range registryNames {
			if !r.token(name).Valid(time.Now()) {
				return false
			}
		}
		return true
	})
}

// invalidRefused: a file with one invalid entry among valid ones is refused by
// tokenctl providers put and by make providers, every message naming the file,
// the provider, the field and the line; the registry's version stays.
func (r *registryFlow) invalidRefused(t *testing.T) {
	before := r.registryVersion()
	if before == "" {
		t.Fatal("no registry version after make providers")
	}
	valid := r.entry("alpha", "max_age: 1s") + r.entry("beta", "max_age: 1s")
	bad := r.entry("gamma", "refresh_before: soon")
	line := strings.Count("providers:\n"+valid+bad, "\n") // refresh_before is the last line
	file := r.writeRegistry("invalid.yaml", valid, bad)
	want := []string{file, `"gamma"`, "refresh_before", fmt.Sprintf("line %d", line), "nothing was stored"}
	for _, c := range []struct {
		how string
		run func() (int, string)
	}{
		{"tokenctl providers put", func() (int, string) { return r.put(file) }},
		{"make providers", func() (int, string) { return r.makeProviders(file) }},
	} {
		code, out := c.run()
		if code == 0 {
			t.Errorf("%s of a file with an invalid entry: got exit 0, want non-zero:\n%s", c.how, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: got %q, want it to name %q", c.how, out, w)
			}
		}
		if after := r.registryVersion(); after != before {
			t.Errorf("%s: registry version went from %s to %s, want it unchanged", c.how, before, after)
		}
	}
}

// removed: after tokenctl providers rm beta, the runs of the stack's schedule ask
// alpha for tokens and beta for none, and beta's published token stays.
func (r *registryFlow) removed(t *testing.T) {
	code, out := r.ctl("providers", "rm", "-bucket", r.bucket, "-token-prefix", r.prefix, "beta")
	if code != 0 || !strings.Contains(out, "stays until it expires") {
		t.Fatalf("tokenctl providers rm beta: got exit %d and %q, want exit 0 and \"stays until it expires\"", code, out)
	}
	// A run begun before the change may still ask beta once: the runs that count
	// start after alpha's next request.
	alpha := r.requests("alpha")
	r.eventually(3*time.Minute, "a scheduled run refreshing alpha", func() bool { return r.requests("alpha") > alpha })
	alpha, beta := r.requests("alpha"), r.requests("beta")
	published := r.token("beta")
	r.eventually(4*time.Minute, "two more scheduled runs refreshing alpha", func() bool { return r.requests("alpha") >= alpha+2 })
	t.Logf("after rm: alpha asked %d times over the runs counted, beta %d", r.requests("alpha")-alpha, r.requests("beta")-beta)
	if got := r.requests("beta"); got != beta {
		t.Errorf("beta after rm: got %d more token requests over %d runs, want none", got-beta, r.requests("alpha")-alpha)
	}
	if got := r.token("beta"); got.AccessToken == "" || got.AccessToken != published.AccessToken || !got.Valid(time.Now()) {
		t.Errorf("beta's published token after rm: got a token valid %v (same as before: %v), want the one published before, still valid",
			got.Valid(time.Now()), got.AccessToken == published.AccessToken)
	}
}
