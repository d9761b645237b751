// Command demo shows the refresher's main job on this machine, with no AWS account
// and no Docker, the way it runs in AWS: against the LocalStack that `make demo`
// starts, it serves fake token endpoints speaking the five seed dialects, stores
// their client credentials in Secrets Manager, checks the registry and probes every
// provider, deploys the refresher's stack, lets the stack's own EventBridge rules run
// the function (the schedule, then a secret change) and reads those runs back from
// CloudWatch Logs, rotates a token by hand, deploys a consumer Lambda that calls a
// partner API with the published token, makes a provider fail, and ends with the
// operator's status table. It deletes what it deployed unless DEMO_KEEP=1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// demo holds what the steps share.
type demo struct {
	out          io.Writer
	repo         string
	id           string
	srv          *oauthtest.Server
	regFile      string
	tokenctl     string
	stack        string
	function     string
	prefix       string
	statePrefix  string
	secretPrefix string
	bucket       string // the stack's registry bucket
	sm           *secretsmanager.Client
	ssm          *ssm.Client
	lam          *lambda.Client
	eb           *eventbridge.Client
	logs         *cloudwatchlogs.Client
	timings      []timing
	stepStart    time.Time
	stepName     string
}

type timing struct {
	step string
	took time.Duration
}

func run(ctx context.Context, out io.Writer) error {
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		return errors.New("AWS_ENDPOINT_URL is not set: run `make demo`, which starts LocalStack first")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "token-refresher-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	id := fmt.Sprintf("%x", time.Now().UnixNano())[:8]
	d := &demo{out: out, repo: repo, id: id, srv: oauthtest.NewServer(), regFile: filepath.Join(tmp, "providers.yaml"),
		tokenctl: filepath.Join(tmp, "tokenctl"), stack: "token-refresher-demo-" + id,
		prefix: "/token-refresher-demo-" + id + "/tokens", statePrefix: "/token-refresher-demo-" + id + "/state",
		secretPrefix: "token-refresher-demo-" + id + "/",
		sm:           secretsmanager.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), lam: lambda.NewFromConfig(cfg),
		eb: eventbridge.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg)}
	d.function = d.stack + "-refresher"
	defer d.srv.Close()
	defer d.cleanup()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"Fake providers of the five seed dialects, their secrets in Secrets Manager, a registry", d.providers},
		{"Check the registry, and probe every provider (a dry run: nothing is published)", d.check},
		{"Deploy the refresher's stack to LocalStack: make deploy ENV=local PROVIDERS=FILE", d.deploy},
		{"The stack's schedule rule runs the function: every token is published, nobody invoked it", d.schedule},
		{"A secret changes: CloudTrail's event reaches the stack's rule, which rotates that provider", d.secretChange},
		{"A manual rotation: make rotate ENV=local PROVIDER=cardlytics", d.rotate},
		{"A consumer Lambda reads the published token and calls the partner's API, before and after a rotation", d.consumer},
		{"A sixth partner, added with one command while the stack runs: no rebuild, no redeploy", d.sixth},
		{"A provider fails: the status table an operator reads (tokenctl status)", d.status},
	}
	for _, s := range steps {
		d.step(s.name)
		if err := s.fn(ctx); err != nil {
			return err
		}
	}
	d.done()
	fmt.Fprintln(out, "\nWhere the time went:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	var total time.Duration
	for _, t := range d.timings {
		total += t.took
		fmt.Fprintf(tw, "  %s\t%s\n", t.took.Round(100*time.Millisecond), t.step)
	}
	fmt.Fprintf(tw, "  %s\ttotal\n", total.Round(time.Second))
	tw.Flush()
	fmt.Fprintln(out, "\nDemo complete: the real path ran in LocalStack, triggered by EventBridge, read by a consumer Lambda.")
	return nil
}

func (d *demo) step(name string) {
	d.done()
	d.stepName, d.stepStart = name, time.Now()
	fmt.Fprintf(d.out, "\n==> %s\n", name)
}

func (d *demo) done() {
	if d.stepName != "" {
		d.timings = append(d.timings, timing{d.stepName, time.Since(d.stepStart)})
		d.stepName = ""
	}
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, "  "+format+"\n", args...) }

func (d *demo) providers(ctx context.Context) error {
	var reg strings.Builder
	reg.WriteString("providers:\n")
	for _, dl := range oauthtest.Dialects() {
		name := string(dl)
		u := d.srv.Add(oauthtest.Provider{Name: name, Dialect: dl, ClientID: "demo-" + name, ClientSecret: "demo secret " + name})
		if _, err := localaws.PutSecret(ctx, d.sm, d.secretPrefix+name, "demo-"+name, "demo secret "+name); err != nil {
			return err
		}
		reg.WriteString(registry.EntryYAML(name, d.secretPrefix+name, dl.Endpoint(u)))
		d.say("%-13s %s  secret %s", name, u, d.secretPrefix+name)
	}
	if err := os.WriteFile(d.regFile, []byte(reg.String()), 0o600); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", d.tokenctl, "./cmd/tokenctl").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/tokenctl: %w\n%s", err, out)
	}
	return nil
}

func (d *demo) check(ctx context.Context) error {
	if err := d.tokenctlRun(ctx, "check", "-token-prefix", d.prefix, d.regFile); err != nil {
		return err
	}
	return d.tokenctlRun(ctx, "check", "-probe", "-token-prefix", d.prefix, d.regFile)
}

// tokenctlRun runs the operator's tool as an operator does and shows its output.
func (d *demo) tokenctlRun(ctx context.Context, args ...string) error {
	shown := append([]string{"tokenctl"}, args...)
	for i, a := range shown {
		if a == d.regFile {
			shown[i] = "providers.yaml"
		}
	}
	d.say("$ %s", strings.Join(shown, " "))
	cmd := exec.CommandContext(ctx, d.tokenctl, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		d.say("%s", strings.ReplaceAll(line, d.regFile, "providers.yaml"))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		d.say("(exit status %d)", exit.ExitCode())
		return nil
	}
	return err
}

func (d *demo) deploy(ctx context.Context) error {
	log, err := os.CreateTemp("", "token-refresher-demo-deploy-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	out, err := localaws.Refresher{Repo: d.repo, Stack: d.stack, Providers: d.regFile, Log: log,
		BuildDir: filepath.Join(d.repo, ".aws-sam", "demo-"+d.id),
		Params: fmt.Sprintf(`ScheduleExpression="rate(1 minute)" TokenParameterPrefix=%s StateParameterPrefix=%s SecretNamePrefix=%s`,
			d.prefix, d.statePrefix, d.secretPrefix)}.Deploy(ctx)
	if err != nil {
		b, _ := os.ReadFile(log.Name())
		return fmt.Errorf("%w\n%s", err, lastLines(string(b), 30))
	}
	d.bucket = out["RegistryBucket"]
	d.say("stack %s: function %s, schedule rate(1 minute), dashboard %s", d.stack, d.function, out["DashboardName"])
	return nil
}

// sixth adds a provider to the running stack's registry, as `make providers` does
// (tokenctl providers put), and waits for the stack's own rules to publish its
// token; the function's code is the same before and after.
func (d *demo) sixth(ctx context.Context) error {
	before, err := d.lam.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.function)})
	if err != nil {
		return err
	}
	const name = "sixth"
	u := d.srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "demo-" + name, ClientSecret: "demo secret " + name})
	if _, err := localaws.PutSecret(ctx, d.sm, d.secretPrefix+name, "demo-"+name, "demo secret "+name); err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(d.regFile), "sixth.yaml")
	if err := os.WriteFile(file, []byte("providers:\n"+registry.EntryYAML(name, d.secretPrefix+name, oauthtest.Cardlytics.Endpoint(u))), 0o600); err != nil {
		return err
	}
	if err := d.tokenctlRun(ctx, "providers", "put", "-bucket", d.bucket, "-secret-prefix", d.secretPrefix, "-token-prefix", d.prefix, file); err != nil {
		return err
	}
	d.say("waiting for the stack to publish %s's token (its registry-changed rule, or the next scheduled run) ...", name)
	if err := d.until(ctx, 3*time.Minute, func() bool { return d.token(ctx, name).Valid(time.Now()) }); err != nil {
		return fmt.Errorf("the sixth provider's token: %w", err)
	}
	after, err := d.lam.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(d.function)})
	if err != nil {
		return err
	}
	shaBefore, shaAfter := aws.ToString(before.Configuration.CodeSha256), aws.ToString(after.Configuration.CodeSha256)
	if shaBefore != shaAfter {
		return fmt.Errorf("the function's code changed from %s to %s: adding a provider must not redeploy", shaBefore, shaAfter)
	}
	d.say("%s published, fingerprint %s; the function's CodeSha256 is unchanged: %s", name, tokens.Fingerprint(d.token(ctx, name).AccessToken), shaAfter)
	return nil
}

func (d *demo) schedule(ctx context.Context) error {
	d.say("waiting for the first scheduled run (rate(1 minute)) ...")
	if err := d.until(ctx, 3*time.Minute, func() bool {
		for _, dl := range oauthtest.Dialects() {
			if !d.token(ctx, string(dl)).Valid(time.Now()) {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("tokens published by the schedule: %w", err)
	}
	d.tokens(ctx)
	return d.showLogs(ctx, `"trigger":"schedule"`)
}

func (d *demo) secretChange(ctx context.Context) error {
	d.srv.SetCredentials("opencard", "demo-opencard", "a new secret")
	version, err := localaws.PutSecret(ctx, d.sm, d.secretPrefix+"opencard", "demo-opencard", "a new secret")
	if err != nil {
		return err
	}
	detail, _ := json.Marshal(map[string]any{"eventSource": "secretsmanager.amazonaws.com", "eventName": "PutSecretValue",
		"requestParameters": map[string]string{"secretId": d.secretPrefix + "opencard"}})
	if _, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String("aws.secretsmanager"), DetailType: aws.String("AWS API Call via CloudTrail"), Detail: aws.String(string(detail)),
	}}}); err != nil {
		return err
	}
	d.say("PutSecretValue %sopencard; CloudTrail's record put on the default event bus", d.secretPrefix)
	if err := d.until(ctx, time.Minute, func() bool { return d.token(ctx, "opencard").SecretVersion == version }); err != nil {
		return fmt.Errorf("opencard rotated after its secret changed: %w", err)
	}
	return d.showLogs(ctx, `"trigger":"secret change"`)
}

func (d *demo) rotate(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "make", "-s", "rotate", "ENV=local", "PROVIDER=cardlytics", "STACK_NAME="+d.stack)
	cmd.Dir = d.repo
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make rotate: %w\n%s", err, lastLines(stderr.String(), 10))
	}
	var res struct {
		Results []struct{ Provider, Status, ExpiresAt string } `json:"results"`
	}
	text := strings.TrimSpace(stdout.String())
	if i := strings.LastIndex(text, `{"results"`); i >= 0 {
		text = text[i:]
	}
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		return fmt.Errorf("make rotate printed %q", lastLines(stdout.String(), 5))
	}
	for _, r := range res.Results {
		d.say("%s: %s, token %s", r.Provider, r.Status, tokens.Fingerprint(d.token(ctx, r.Provider).AccessToken))
	}
	return nil
}

func (d *demo) consumer(ctx context.Context) error {
	stack := "token-refresher-demo-consumer-" + d.id
	out, err := localaws.Consumer{Repo: d.repo, Stack: stack, RefresherStack: d.stack, TokenParameter: d.prefix + "/ecard",
		PartnerURL: d.srv.APIURL("ecard"), BuildDir: filepath.Join(d.repo, ".aws-sam", "demo-consumer-"+d.id), Log: devNull()}.Deploy(ctx)
	if err != nil {
		return err
	}
	fn := out["ConsumerFunctionName"]
	call := func(when string) error {
		res, err := d.lam.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"path":"/v1/reports"}`)})
		if err != nil {
			return err
		}
		var r struct {
			Status           int    `json:"status"`
			Body             string `json:"body"`
			TokenFingerprint string `json:"token_fingerprint"`
		}
		if res.FunctionError != nil || json.Unmarshal(res.Payload, &r) != nil {
			return fmt.Errorf("consumer: %s", res.Payload)
		}
		d.say("%s: partner answered %d %s, with token %s (published: %s)", when, r.Status, r.Body, r.TokenFingerprint,
			tokens.Fingerprint(d.token(ctx, "ecard").AccessToken))
		return nil
	}
	if err := call("consumer " + fn); err != nil {
		return err
	}
	if _, err := d.lam.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(d.function), Payload: []byte(`{"action":"rotate","providers":["ecard"]}`)}); err != nil {
		return err
	}
	d.say("ecard rotated: the partner now refuses the old token")
	return call("consumer again (its cached token earns a 401; it reads SSM again and retries)")
}

func (d *demo) status(ctx context.Context) error {
	d.srv.SetFault("checkissuing", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	res, err := d.lam.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(d.function), Payload: []byte(`{"action":"rotate","providers":["checkissuing"]}`)})
	if err != nil {
		return err
	}
	d.say("checkissuing now refuses its credentials; a rotation fails: %s", lastLines(string(res.Payload), 1))
	return d.tokenctlRun(ctx, "status", "-providers", d.regFile, "-token-prefix", d.prefix, "-state-prefix", d.statePrefix)
}

// tokens shows the published tokens as a consumer's SDK reads them: by fingerprint.
func (d *demo) tokens(ctx context.Context) {
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PROVIDER\tTOKEN\tEXPIRES AT\tPARAMETER")
	for _, dl := range oauthtest.Dialects() {
		t := d.token(ctx, string(dl))
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", dl, tokens.Fingerprint(t.AccessToken), t.ExpiresAt.UTC().Format(time.RFC3339), d.prefix+"/"+string(dl))
	}
	tw.Flush()
}

// showLogs prints the function's summary lines that contain text, from CloudWatch Logs.
func (d *demo) showLogs(ctx context.Context, text string) error {
	var lines []string
	err := d.until(ctx, time.Minute, func() bool {
		out, err := d.logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + d.function)})
		if err != nil {
			return false
		}
		lines = lines[:0]
		for _, e := range out.Events {
			if m := aws.ToString(e.Message); strings.Contains(m, text) && strings.Contains(m, `"run finished`) {
				lines = append(lines, m)
			}
		}
		return len(lines) > 0
	})
	if err != nil {
		return fmt.Errorf("a run with %s in the function's logs: %w", text, err)
	}
	d.say("from CloudWatch Logs, /aws/lambda/%s:", d.function)
	for _, l := range lines {
		d.say("  %s", strings.TrimSpace(l))
	}
	return nil
}

func (d *demo) token(ctx context.Context, name string) tokens.Token {
	out, err := d.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(d.prefix + "/" + name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return tokens.Token{}
	}
	t, _ := tokens.Parse([]byte(aws.ToString(out.Parameter.Value)))
	return t
}

func (d *demo) until(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil
}

// cleanup deletes the stacks and build directories the demo made, unless DEMO_KEEP=1.
func (d *demo) cleanup() {
	if os.Getenv("DEMO_KEEP") == "1" {
		fmt.Fprintf(d.out, "\nDEMO_KEEP=1: stacks %s and its consumer left in LocalStack\n", d.stack)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, s := range []string{"token-refresher-demo-consumer-" + d.id, d.stack} {
		_ = localaws.DeleteStack(ctx, d.repo, s, devNull())
	}
	for _, dir := range []string{"demo-" + d.id, "demo-consumer-" + d.id} {
		os.RemoveAll(filepath.Join(d.repo, ".aws-sam", dir))
	}
}

func devNull() *os.File {
	f, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	return f
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
