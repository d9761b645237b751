//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// TestIntegrationRegistryFlows deploys a stack with no providers, in both modes, and
// changes its registry only as an operator does, with tokenctl, make providers and
// the S3 API, while the stack's own schedule runs it: with no providers the
// scheduled runs are healthy and tokenctl status says "no providers"; the five seed
// providers and two more put with make providers are published by the schedule,
// the function's code unchanged; an entry broken by hand in the stored object
// fails that provider at the next scheduled run, with the reason naming it and the
// field in the log, the invocation's error and tokenctl status, while the others
// refresh and its token stays, until make providers restores it; a file with one
// invalid entry is refused, naming file, provider, field and line, and nothing is
// stored; a provider removed gets no more token requests while its published token
// stays.
func TestIntegrationRegistryFlows(t *testing.T) {
	t.Parallel()
	tokenctl := buildTokenctl(t)
	for _, mode := range []string{"single", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r := newRegistryFlow(t, mode, tokenctl)
			r.noProviders(t)
			r.putPublished(t)
			r.brokenByHand(t)
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
	stored   string          // the providers file put by putPublished
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

// registryNames are the providers the flows put besides the five seeds: both
// refreshed at every run (max_age 1s), so a run that skips one is seen at once.
var registryNames = []string{"alpha", "beta"}

// seedNames are the five seed providers, each answering in its own dialect.
func seedNames() []string {
	var out []string
	for _, d := range oauthtest.Dialects() {
		out = append(out, string(d))
	}
	return out
}

// registryDialect is a provider's dialect: a seed's own, Cardlytics's (plain RFC
// 6749) for the others.
func registryDialect(name string) oauthtest.Dialect {
	for _, d := range oauthtest.Dialects() {
		if string(d) == name {
			return d
		}
	}
	return oauthtest.Cardlytics
}

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
		u = r.srv.Add(oauthtest.Provider{Name: name, Dialect: registryDialect(name), ClientID: "id-" + name, ClientSecret: "secret " + name})
		r.putSecret(name, "secret "+name)
	}
	e := registry.EntryYAML(name, r.secretPrefix+name, registryDialect(name).Endpoint(u))
	for _, m := range more {
		e += "    " + m + "\n"
	}
	return e
}

func (r *registryFlow) requests(name string) int { return r.srv.Stats(name).Requests }

// codeSHA is the deployed function's CodeSha256, as Lambda reports it.
func (r *registryFlow) codeSHA() string {
	r.t.Helper()
	out, err := r.lam.GetFunction(r.ctx, &lambda.GetFunctionInput{FunctionName: aws.String(r.function)})
	if err != nil {
		r.t.Fatalf("get-function %s: %v", r.function, err)
	}
	return aws.ToString(out.Configuration.CodeSha256)
}

// status runs tokenctl status against the stack.
func (r *registryFlow) status() (int, string) {
	r.t.Helper()
	return r.ctl("status", "-bucket", r.bucket, "-token-prefix", r.prefix, "-state-prefix", "/e2e-"+r.id+"/state")
}

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
	code, out := r.status()
	if code != 0 || strings.TrimSpace(out) != "no providers" {
		t.Errorf("tokenctl status: got exit %d and %q, want exit 0 and \"no providers\"", code, out)
	}
}

// putPublished: make providers stores the five seeds and two more providers, and
// the schedule publishes every one with the function's code unchanged: providers
// are data, not a build.
func (r *registryFlow) putPublished(t *testing.T) {
	sha := r.codeSHA()
	var entries []string
	for _, name := range registryNames {
		entries = append(entries, r.entry(name, "max_age: 1s"))
	}
	for _, name := range seedNames() {
		entries = append(entries, r.entry(name))
	}
	all := append(append([]string{}, registryNames...), seedNames()...)
	r.stored = r.writeRegistry("providers.yaml", entries...)
	want := "added " + strings.Join(all, ", ")
	if code, out := r.makeProviders(r.stored); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("make providers: got exit %d and %q, want exit 0 and %q", code, out, want)
	}
	r.eventually(3*time.Minute, "every provider published by the schedule", func() bool {
		for _, name := range all {
			if !r.token(name).Valid(time.Now()) {
				return false
			}
		}
		return true
	})
	for _, name := range all {
		if tok, issued := r.token(name), r.srv.Stats(name).Issued; len(issued) == 0 || !slices.Contains(issued, tok.AccessToken) {
			t.Errorf("%s: published a token its provider did not issue", name)
		}
	}
	if after := r.codeSHA(); after != sha {
		t.Errorf("the function's CodeSha256 went from %s to %s over make providers, want it unchanged", sha, after)
	}
}

// brokenByHand: the stored registry is written with the S3 API, as a console edit
// would, with cardlytics's entry given an unknown field. The next scheduled run
// fails cardlytics with the reason, naming it and the field, and refreshes the
// others; cardlytics's published token stays. make providers restores it.
func (r *registryFlow) brokenByHand(t *testing.T) {
	obj, err := r.s3.GetObject(r.ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(catalog.DefaultKey)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	const entry = "  - name: cardlytics\n"
	if !bytes.Contains(body, []byte(entry)) {
		t.Fatalf("the stored registry has no %q line:\n%s", entry, body)
	}
	broken := bytes.Replace(body, []byte(entry), []byte(entry+"    scopes: reports\n"), 1)
	published := r.token("cardlytics")
	alpha, beta := r.requests("alpha"), r.requests("beta")
	if _, err := r.s3.PutObject(r.ctx, &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(catalog.DefaultKey), Body: bytes.NewReader(broken)}); err != nil {
		t.Fatal(err)
	}
	rejected := func(l string) bool {
		return strings.Contains(l, `"message":"provider registry entry cannot be loaded"`) &&
			strings.Contains(l, `"provider":"cardlytics"`) && strings.Contains(l, "scopes")
	}
	r.eventually(3*time.Minute, "a scheduled run logging cardlytics's entry rejected for its scopes field", func() bool { return r.loggedLine(rejected) })
	// Every run from here on read the broken version: the next one refreshes the
	// others.
	alpha, beta = max(alpha, r.requests("alpha")), max(beta, r.requests("beta"))
	r.eventually(3*time.Minute, "a scheduled run refreshing alpha and beta", func() bool {
		return r.requests("alpha") > alpha && r.requests("beta") > beta
	})
	payload, failed := r.invoke(r.function, `{"detail-type":"Scheduled Event","source":"aws.events"}`)
	if !failed || !strings.Contains(string(payload), "cardlytics") || !strings.Contains(string(payload), "scopes") {
		t.Errorf("a run with cardlytics's entry broken: got failed %v with %s, want an error naming cardlytics and scopes", failed, payload)
	}
	code, out := r.status()
	if code != 1 || !regexp.MustCompile(`(?m)^cardlytics\s+failing\s.*registry entry cannot be loaded.*scopes`).MatchString(out) {
		t.Errorf("tokenctl status: got exit %d and\n%s\nwant exit 1 and cardlytics failing, its entry's scopes named", code, out)
	}
	if got := r.token("cardlytics"); got.AccessToken != published.AccessToken {
		t.Errorf("cardlytics's published token changed while its entry was broken; want it kept")
	}
	if code, out := r.makeProviders(r.stored); code != 0 || !strings.Contains(out, "cardlytics") {
		t.Fatalf("make providers to restore: got exit %d and %q, want exit 0, cardlytics stored", code, out)
	}
	if code, out := r.status(); code != 0 || strings.Contains(out, "cannot be loaded") {
		t.Errorf("tokenctl status after the restore: got exit %d and\n%s\nwant exit 0, every entry loaded", code, out)
	}
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
