//go:build integration

package examples

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// example is one consumer example and how to start its command-line entry.
type example struct {
	name string
	// command returns the program and arguments that call url once per input line,
	// or fails the test saying how to install what is missing.
	command func(t *testing.T, url string) []string
}

var consumerExamples = []example{
	{"python", func(t *testing.T, url string) []string {
		python, err := filepath.Abs(filepath.Join("..", ".venv", "examples", "bin", "python"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(python); err != nil {
			t.Fatalf("%s is missing: install the examples' dependencies with `make examples-deps`", python)
		}
		return []string{python, filepath.Join("python", "call_partner.py"), url}
	}},
	{"node", func(t *testing.T, url string) []string {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Fatal("node is not on PATH: the Node.js example needs Node.js 20 or later")
		}
		if _, err := os.Stat(filepath.Join("node", "node_modules", "@aws-lambda-powertools", "parameters")); err != nil {
			t.Fatal("examples/node/node_modules is missing: install the examples' dependencies with `make examples-deps`")
		}
		return []string{node, filepath.Join("node", "call-partner.js"), url}
	}},
}

// TestIntegrationConsumerExamples runs each consumer example as a warm Lambda would
// use it: one process that keeps its token between calls to a partner API. The test
// publishes a token to SSM on LocalStack, and the fake partner accepts only the token
// the test says is current. Between two calls the test publishes a new token and
// makes the partner accept only that one, so the example's next call is sent with
// its cached old token, gets 401, reads the parameter again and retries once with the
// new token. Then the partner refuses the new token too, without a newer one
// published: the example reads the same token again and must not retry.
func TestIntegrationConsumerExamples(t *testing.T) {
	cfg := awstest.Config(t)
	client := ssm.NewFromConfig(cfg)
	for _, ex := range consumerExamples {
		t.Run(ex.name, func(t *testing.T) {
			ctx := t.Context()
			param := awstest.UniqueName("/token-refresher-test/examples/" + ex.name + "-")
			t.Cleanup(func() {
				_, _ = client.DeleteParameter(context.WithoutCancel(ctx), &ssm.DeleteParameterInput{Name: &param})
			})
			now := time.Now().UTC().Truncate(time.Second)
			publish := func(access string, lifetime time.Duration) {
				t.Helper()
				b, err := tokens.Token{AccessToken: access, TokenType: "Bearer", IssuedAt: now,
					ExpiresAt: now.Add(lifetime), Provider: "ecard"}.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				_, err = client.PutParameter(ctx, &ssm.PutParameterInput{Name: &param, Value: aws.String(string(b)),
					Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
				if err != nil {
					t.Fatalf("PutParameter: %v", err)
				}
			}
			partner := newPartner(t)
			first, second := "example-first-"+randomHex(t), "example-second-"+randomHex(t)

			publish(first, time.Hour)
			partner.accept(first)
			proc := startExample(t, ex.command(t, partner.srv.URL), "TOKEN_PARAMETER="+param)

			// A first call: the example reads the parameter and the partner takes the token.
			got := proc.call(`{"report":"daily"}`)
			want(t, got, 200, first, `ok {"report":"daily"}`)
			partner.saw(t, first)

			// The refresher replaced the token and the partner revoked the old one.
			publish(second, 2*time.Hour)
			partner.accept(second)
			got = proc.call(`{"report":"weekly"}`)
			want(t, got, 200, second, `ok {"report":"weekly"}`)
			// Sent first with the cached token, then once more, with the same body,
			// with the token read again after the 401.
			partner.saw(t, first, second)
			if b := partner.bodies(); b[len(b)-1] != b[len(b)-2] {
				t.Errorf("the retry sent body %q, the first attempt %q", b[len(b)-1], b[len(b)-2])
			}

			// The partner refuses the current token too, and no newer one is
			// published: the 401 is the answer, with no second attempt.
			partner.accept("")
			got = proc.call("")
			want(t, got, 401, second, "")
			partner.saw(t, second)

			out := proc.stop()
			for _, tok := range []string{first, second} {
				if strings.Contains(out, tok) {
					t.Errorf("the example printed a token; only fingerprints may appear:\n%s", out)
				}
			}
		})
	}
}

// TestIntegrationConsumerExamplesRotate runs each example with REFRESHER_FUNCTION
// set, against SSM on LocalStack and a stand-in for the refresher function: a
// loopback server that speaks Lambda's Invoke API (AWS_ENDPOINT_URL_LAMBDA), records
// each event and, like the function, publishes a successor for a conditional
// rotation of the published token. The partner revokes the published token with no
// successor published: the example must re-read, send exactly one conditional
// rotation for that token, wait for the successor and retry once with it. When no
// successor comes, it gives up within its rotation wait with the partner's 401, and
// the next 401 with the same token, in the quiet period, sends nothing.
func TestIntegrationConsumerExamplesRotate(t *testing.T) {
	cfg := awstest.Config(t)
	client := ssm.NewFromConfig(cfg)
	for _, ex := range consumerExamples {
		t.Run(ex.name, func(t *testing.T) {
			ctx := t.Context()
			param := awstest.UniqueName("/token-refresher-test/examples/rotate-" + ex.name + "-")
			t.Cleanup(func() {
				_, _ = client.DeleteParameter(context.WithoutCancel(ctx), &ssm.DeleteParameterInput{Name: &param})
			})
			now := time.Now().UTC().Truncate(time.Second)
			publish := func(access string) error {
				b, err := tokens.Token{AccessToken: access, TokenType: "Bearer", IssuedAt: now,
					ExpiresAt: now.Add(time.Hour), Provider: "ecard"}.Marshal()
				if err != nil {
					return err
				}
				_, err = client.PutParameter(context.WithoutCancel(ctx), &ssm.PutParameterInput{Name: &param,
					Value: aws.String(string(b)), Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
				return err
			}
			partner := newPartner(t)
			first, second := "example-first-"+randomHex(t), "example-second-"+randomHex(t)
			refresher := newFakeRefresher(t, func(ev rotationEvent) error {
				if ev.IfToken == tokens.Fingerprint(first) {
					return publish(second)
				}
				return nil // the partner refuses every token: nothing better to publish
			})

			if err := publish(first); err != nil {
				t.Fatal(err)
			}
			partner.accept(first)
			proc := startExample(t, ex.command(t, partner.srv.URL), "TOKEN_PARAMETER="+param,
				"REFRESHER_FUNCTION=token-refresher-refresher", "AWS_ENDPOINT_URL_LAMBDA="+refresher.srv.URL,
				"TOKEN_ROTATION_WAIT=2")
			want(t, proc.call(""), 200, first, "")
			partner.saw(t, first)

			// The partner revokes the published token; no successor is published yet.
			partner.accept(second)
			want(t, proc.call(`{"report":"daily"}`), 200, second, `ok {"report":"daily"}`)
			partner.saw(t, first, second)
			refresher.sent(t, first)

			// The partner refuses the successor too, and the refresher can do no better:
			// the 401 after the bounded wait, and one rotation for the refused token.
			partner.accept("")
			want(t, proc.call(""), 401, second, "")
			partner.saw(t, second)
			refresher.sent(t, second)

			// Within the quiet period, another 401 with it sends no rotation.
			want(t, proc.call(""), 401, second, "")
			partner.saw(t, second)
			refresher.sent(t)
			_ = proc.stop()
		})
	}
}

// TestIntegrationConsumerSnippets runs the Python and Node.js snippets of
// docs/consumers.md (examples/python/snippets.py, examples/node/snippets.js) against
// SSM on LocalStack: every documented way reads the published token, and a
// Powertools read within its max age keeps the cached token while a forced fetch
// gets the new one.
func TestIntegrationConsumerSnippets(t *testing.T) {
	cfg := awstest.Config(t)
	client := ssm.NewFromConfig(cfg)
	snippets := map[string]string{"python": filepath.Join("python", "snippets.py"), "node": filepath.Join("node", "snippets.js")}
	for _, ex := range consumerExamples {
		t.Run(ex.name, func(t *testing.T) {
			ctx := t.Context()
			param := awstest.UniqueName("/token-refresher-test/examples/snippets-" + ex.name + "-")
			t.Cleanup(func() {
				_, _ = client.DeleteParameter(context.WithoutCancel(ctx), &ssm.DeleteParameterInput{Name: &param})
			})
			now := time.Now().UTC().Truncate(time.Second)
			publish := func(access string) {
				t.Helper()
				b, err := tokens.Token{AccessToken: access, TokenType: "Bearer", IssuedAt: now,
					ExpiresAt: now.Add(time.Hour), Provider: "ecard"}.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: &param, Value: aws.String(string(b)),
					Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
					t.Fatalf("PutParameter: %v", err)
				}
			}
			first, second := "snippet-first-"+randomHex(t), "snippet-second-"+randomHex(t)
			publish(first)
			argv := ex.command(t, "unused")
			argv = []string{argv[0], snippets[ex.name]}
			proc := startExample(t, argv, "TOKEN_PARAMETER="+param)
			line := func() map[string]string {
				t.Helper()
				out, ok := <-proc.lines
				if !ok {
					t.Fatalf("the snippets ended without answering:\n%s", proc.stderr)
				}
				proc.out.WriteString(out + "\n")
				got := map[string]string{}
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("the snippets printed %q: %v", out, err)
				}
				return got
			}
			for way, fp := range line() {
				if fp != tokens.Fingerprint(first) {
					t.Errorf("%s read token %s, want %s", way, fp, tokens.Fingerprint(first))
				}
			}
			publish(second)
			if _, err := io.WriteString(proc.stdin, "\n"); err != nil {
				t.Fatal(err)
			}
			got := line()
			if got["cached"] != tokens.Fingerprint(first) || got["forced"] != tokens.Fingerprint(second) {
				t.Errorf("got cached %s, forced %s; want the cached read to keep %s and the forced fetch to get %s",
					got["cached"], got["forced"], tokens.Fingerprint(first), tokens.Fingerprint(second))
			}
			out := proc.stop()
			if strings.Contains(out, first) || strings.Contains(out, second) {
				t.Errorf("the snippets printed a token:\n%s", out)
			}
		})
	}
}

// rotationEvent is the conditional rotation a consumer sends the refresher.
type rotationEvent struct {
	Action    string   `json:"action"`
	Providers []string `json:"providers"`
	IfToken   string   `json:"if_token"`
}

// fakeRefresher answers Lambda's Invoke API on 127.0.0.1 for the refresher function.
type fakeRefresher struct {
	srv *httptest.Server

	mu      sync.Mutex
	events  []rotationEvent
	checked int
}

func newFakeRefresher(t *testing.T, rotate func(rotationEvent) error) *fakeRefresher {
	f := &fakeRefresher{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/token-refresher-refresher/invocations" {
			t.Errorf("the refresher was sent %s %s, want an invoke of token-refresher-refresher", r.Method, r.URL.Path)
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if got := r.Header.Get("X-Amz-Invocation-Type"); got != "Event" {
			t.Errorf("invocation type %q, want Event (asynchronous)", got)
		}
		var ev rotationEvent
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil || ev.Action != "rotate" || len(ev.Providers) != 1 || ev.Providers[0] != "ecard" {
			t.Errorf("the refresher was sent %s, want a conditional rotation of ecard", body)
		}
		f.mu.Lock()
		f.events = append(f.events, ev)
		f.mu.Unlock()
		if err := rotate(ev); err != nil {
			t.Errorf("publish the successor: %v", err)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// sent checks that the rotations since the last check were for exactly these tokens.
func (f *fakeRefresher) sent(t *testing.T, refusedInOrder ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var got, want []string
	for _, ev := range f.events[f.checked:] {
		got = append(got, ev.IfToken)
	}
	for _, tok := range refusedInOrder {
		want = append(want, tokens.Fingerprint(tok))
	}
	f.checked = len(f.events)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("the refresher was sent rotations if_token %v, want %v", got, want)
	}
}

// result is one line the example prints per call.
type result struct {
	Status           int    `json:"status"`
	TokenFingerprint string `json:"token_fingerprint"`
	Body             string `json:"body"`
}

func want(t *testing.T, got result, status int, token, body string) {
	t.Helper()
	if got.Status != status || got.TokenFingerprint != tokens.Fingerprint(token) {
		t.Fatalf("got status %d with token %s, want %d with %s", got.Status, got.TokenFingerprint, status, tokens.Fingerprint(token))
	}
	if body != "" && got.Body != body {
		t.Fatalf("got body %q, want %q", got.Body, body)
	}
}

// partner is a fake partner API on 127.0.0.1 that accepts one bearer token.
type partner struct {
	srv *httptest.Server

	mu            sync.Mutex
	accepted      string
	seen          []string // Authorization headers, in order
	requestBodies []string
	checked       int // how many of seen the test has looked at
}

func newPartner(t *testing.T) *partner {
	p := &partner{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		defer p.mu.Unlock()
		auth := r.Header.Get("Authorization")
		p.seen = append(p.seen, auth)
		p.requestBodies = append(p.requestBodies, string(body))
		if p.accepted == "" || auth != "Bearer "+p.accepted {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid_token", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok "+string(body))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *partner) accept(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted = token
}

// saw checks that the requests since the last check carried exactly these tokens.
func (p *partner) saw(t *testing.T, tokensInOrder ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var got, want []string
	for _, auth := range p.seen[p.checked:] {
		got = append(got, tokens.Fingerprint(strings.TrimPrefix(auth, "Bearer ")))
	}
	for _, tok := range tokensInOrder {
		want = append(want, tokens.Fingerprint(tok))
	}
	p.checked = len(p.seen)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("the partner was sent tokens %v, want %v", got, want)
	}
}

func (p *partner) bodies() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requestBodies...)
}

// process is a running example: a line in is one call, a line out its result.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
	out    strings.Builder
}

func startExample(t *testing.T, argv []string, env ...string) *process {
	t.Helper()
	// A bound on a hung example, not a measurement: a healthy run takes seconds.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{t: t, cmd: cmd, lines: make(chan string), stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p
}

// call sends one input line and returns the result the example prints for it.
func (p *process) call(line string) result {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("write to the example: %v\nstderr:\n%s", err, p.stderr)
	}
	out, ok := <-p.lines
	if !ok {
		p.t.Fatalf("the example ended without answering:\n%s", p.stderr)
	}
	p.out.WriteString(out + "\n")
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		p.t.Fatalf("the example printed %q, not a result: %v\nstderr:\n%s", out, err, p.stderr)
	}
	return r
}

// stop ends the input, waits for the example to exit 0, and returns all it printed.
func (p *process) stop() string {
	p.t.Helper()
	_ = p.stdin.Close()
	for out := range p.lines {
		p.out.WriteString(out + "\n")
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("the example exited with %v\nstderr:\n%s", err, p.stderr)
	}
	return p.out.String() + p.stderr.String()
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
