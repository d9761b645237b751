//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// functionTimeout is the deployed function's timeout: short, so the timeout test
// is quick, and long enough for a run of six providers.
const functionTimeout = 20 * time.Second

// path is the deployed event-driven path: the refresher's stack in LocalStack with
// its registry of fake providers (the five seed dialects, and "hang", which is
// made to hang), their secrets, and the AWS clients the tests use.
type path struct {
	t            testing.TB
	ctx          context.Context
	repo         string
	id           string
	mode         string
	srv          *oauthtest.Server
	stack        string
	function     string
	prefix       string
	secretPrefix string
	queueURL     string
	outputs      map[string]string
	lam          *lambda.Client
	ssm          *ssm.Client
	sm           *secretsmanager.Client
	eb           *eventbridge.Client
	sqs          *sqs.Client
	logs         *cloudwatchlogs.Client
}

var names = []string{"ecard", "booking", "opencard", "cardlytics", "checkissuing", "hang"}

// dialect is a provider's: the seed dialect it is named after, Cardlytics for
// "hang", ECard (24 h tokens) for any other.
func dialect(name string) oauthtest.Dialect {
	for _, d := range oauthtest.Dialects() {
		if string(d) == name {
			return d
		}
	}
	if name == "hang" {
		return oauthtest.Cardlytics
	}
	return oauthtest.ECard
}

// TestIntegrationLambdaPath deploys the refresher's stack to LocalStack as a user
// does (make deploy ENV=local PROVIDERS=FILE) and drives the path as deployed,
// through AWS APIs only: nothing runs the function but Lambda. Both deployment
// modes (template parameter Mode) pass the same suite, side by side.
func TestIntegrationLambdaPath(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"single", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := deploy(t, mode, names, "")
			// In order: the schedule publishes the tokens the others start from.
			t.Run("the schedule rule publishes every token with nobody invoking", p.scheduled)
			t.Run("a secret change rotates exactly the provider using the secret", p.secretChanged)
			t.Run("a manual rotate, sync and async", p.manualRotate)
			t.Run("a failed async invoke lands in the failure queue after its retry", p.failureQueue)
			t.Run("warm invocations after a fallback do not refresh again", p.warmFallback)
			t.Run("a provider that hangs past the timeout still yields a result naming it", p.timeout)
			t.Run("the consumer Lambda calls the partner with the published token, after a rotate with the new one, and after a revocation with the one it asked for", p.consumer)
		})
	}
}

// fanoutParams are the fan-out settings of the tests' fanned-out stacks: jobs come
// back soon after a failure (the visibility timeout must not be below the
// function's timeout), and several workers run at once.
func fanoutParams(timeout time.Duration) string {
	return fmt.Sprintf("Mode=fanout WorkerConcurrency=4 WorkerBatchSize=8 JobVisibilityTimeout=%d", int(timeout.Seconds())+10)
}

// deploy deploys a stack whose registry holds providers, each with its secret and
// its fake endpoint (none: no registry is stored); extra are more template parameters.
func deploy(t testing.TB, mode string, providers []string, extra string) *path {
	cfg := awstest.Config(t)
	ctx := context.Background()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	id := awstest.UniqueName("")[:8]
	// The tokens, the records and the secrets are the test's own, and deleted after
	// the stack is (cleanups run last first); E2E_KEEP keeps only the stacks.
	root := awstest.Parameters(t, cfg, "e2e-"+id+"-")
	p := &path{t: t, ctx: ctx, repo: repo, id: id, mode: mode, srv: oauthtest.NewServer(),
		stack: "token-refresher-e2e-" + id, prefix: root + "/tokens", secretPrefix: awstest.Secrets(t, cfg, "token-refresher-e2e-"+id+"-"),
		lam: lambda.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg),
		eb: eventbridge.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg)}
	p.function = p.stack + "-refresher"
	t.Cleanup(p.srv.Close)

	var reg strings.Builder
	reg.WriteString("providers:\n")
	creds := map[string]awstest.Credentials{}
	for _, name := range providers {
		u := p.srv.Add(oauthtest.Provider{Name: name, Dialect: dialect(name), ClientID: "id-" + name, ClientSecret: "secret " + name})
		reg.WriteString(registry.EntryYAML(name, p.secretPrefix+name, dialect(name).Endpoint(u)))
		creds[p.secretPrefix+name] = awstest.Credentials{ClientID: "id-" + name, ClientSecret: "secret " + name}
	}
	awstest.PutSecrets(t, p.sm, creds)
	regFile := "" // none: the stack is deployed with no providers, as a new user's is
	if len(providers) > 0 {
		regFile = filepath.Join(t.TempDir(), "providers.yaml")
		if err := os.WriteFile(regFile, []byte(reg.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	buildDir := filepath.Join(repo, ".aws-sam", "e2e-"+id)
	t.Cleanup(func() { os.RemoveAll(buildDir) })
	t.Cleanup(func() {
		if os.Getenv("E2E_KEEP") == "" {
			if err := localaws.DeleteStack(context.Background(), repo, p.stack, nil); err != nil {
				t.Errorf("delete %s: %v", p.stack, err)
			}
		}
	})
	start := time.Now()
	params := fmt.Sprintf(`ScheduleExpression="rate(1 minute)" FunctionTimeout=%d TokenParameterPrefix=%s StateParameterPrefix=%s/state SecretNamePrefix=%s`,
		int(functionTimeout.Seconds()), p.prefix, root, p.secretPrefix)
	if mode == "fanout" {
		params += " " + fanoutParams(functionTimeout)
	}
	if extra != "" {
		params += " " + extra
	}
	out, err := localaws.Refresher{Repo: repo, Stack: p.stack, Providers: regFile, BuildDir: buildDir, Params: params}.Deploy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stack %s deployed in %s", p.stack, time.Since(start).Round(time.Second))
	p.queueURL, p.outputs = out["FailedInvocationsQueueUrl"], out
	if p.queueURL == "" || out["FunctionArn"] == "" || (out["RefreshJobsQueueUrl"] != "") != (mode == "fanout") {
		t.Fatalf("outputs %v", out)
	}
	return p
}

// putSecret gives a provider's secret a new current version and returns its id.
func (p *path) putSecret(name, secret string) string {
	p.t.Helper()
	return awstest.PutSecret(p.t, p.sm, p.secretPrefix+name, "id-"+name, secret)
}

// token reads a provider's published token, or the zero Token when there is none.
func (p *path) token(name string) tokens.Token {
	p.t.Helper()
	out, err := p.ssm.GetParameter(p.ctx, &ssm.GetParameterInput{Name: aws.String(p.prefix + "/" + name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return tokens.Token{}
	}
	tok, err := tokens.Parse([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	return tok
}

// eventually polls cond until it holds or limit passes.
func (p *path) eventually(limit time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(time.Second)
	}
}

// invoke calls the function synchronously with event and returns its payload and
// whether it ended in a function error.
func (p *path) invoke(function, event string) (payload []byte, failed bool) {
	p.t.Helper()
	out, err := p.lam.Invoke(p.ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: []byte(event)})
	if err != nil {
		p.t.Fatalf("invoke %s: %v", function, err)
	}
	return out.Payload, out.FunctionError != nil
}

type result struct {
	Results []struct {
		Provider, Status, Error, Note, Reason string
	} `json:"results"`
	Idle bool `json:"idle"`
}

func (p *path) refresh(event string) result {
	p.t.Helper()
	payload, failed := p.invoke(p.function, event)
	var res result
	if failed || json.Unmarshal(payload, &res) != nil {
		p.t.Fatalf("%s: %s", event, payload)
	}
	return res
}

func (p *path) scheduled(t *testing.T) {
	// Nobody invokes: the stack's own rule, rate(1 minute), runs the function.
	p.eventually(3*time.Minute, "tokens published by the schedule", func() bool {
		for _, name := range names {
			if !p.token(name).Valid(time.Now()) {
				return false
			}
		}
		return true
	})
	for _, name := range names {
		tok := p.token(name)
		issued := p.srv.Stats(name).Issued
		if tok.Provider != name || tok.SecretVersion == "" || len(issued) == 0 || tok.AccessToken != issued[len(issued)-1] {
			t.Errorf("%s: published %v", name, tok)
		}
	}
	// Its log says a schedule asked.
	p.eventually(time.Minute, "a run by the schedule in the function's logs", func() bool {
		return p.logged(`"trigger":"schedule"`)
	})
	if p.mode == "fanout" {
		// The schedule's run planned: it sent the providers to the queue, and workers
		// taking them from it published the tokens.
		p.eventually(time.Minute, "a planner and a worker in the function's logs", func() bool {
			return p.logged(`"message":"token sent to the workers"`) && p.logged(`"trigger":"queue"`)
		})
	}
}

// logged reports whether the function's log group holds text.
func (p *path) logged(text string) bool {
	return p.loggedLine(func(line string) bool { return strings.Contains(line, text) })
}

// loggedLine reports whether a line of the function's log group satisfies match.
func (p *path) loggedLine(match func(string) bool) bool {
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(p.logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String("/aws/lambda/" + p.function),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(p.ctx)
		if err != nil {
			return false
		}
		for _, e := range page.Events {
			if match(aws.ToString(e.Message)) {
				return true
			}
		}
	}
	return false
}

func (p *path) secretChanged(t *testing.T) {
	before := map[string]string{}
	for _, name := range names {
		before[name] = p.token(name).AccessToken
	}
	// The client secret changes at the provider and in Secrets Manager; CloudTrail's
	// record of the change reaches the stack's rule.
	p.srv.SetCredentials("opencard", "id-opencard", "changed secret")
	version := p.putSecret("opencard", "changed secret")
	detail, _ := json.Marshal(map[string]any{
		"eventSource": "secretsmanager.amazonaws.com", "eventName": "PutSecretValue",
		"requestParameters": map[string]string{"secretId": p.secretPrefix + "opencard"},
	})
	out, err := p.eb.PutEvents(p.ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String("aws.secretsmanager"), DetailType: aws.String("AWS API Call via CloudTrail"), Detail: aws.String(string(detail)),
	}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("put-events: %v %+v", err, out)
	}
	p.eventually(time.Minute, "opencard rotated after its secret changed", func() bool {
		return p.token("opencard").SecretVersion == version
	})
	for _, name := range names {
		if name != "opencard" && p.token(name).AccessToken != before[name] {
			t.Errorf("%s rotated too", name)
		}
	}
}

func (p *path) manualRotate(t *testing.T) {
	res := p.refresh(`{"action":"rotate","providers":["cardlytics"]}`)
	issued := p.srv.Stats("cardlytics").Issued
	if len(res.Results) != 1 || res.Results[0].Status != "refreshed" || p.token("cardlytics").AccessToken != issued[len(issued)-1] {
		t.Fatalf("sync rotate: %+v", res)
	}
	before := p.token("booking").AccessToken
	if _, err := p.lam.Invoke(p.ctx, &lambda.InvokeInput{FunctionName: aws.String(p.function),
		InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{"action":"rotate","providers":["booking"]}`)}); err != nil {
		t.Fatal(err)
	}
	p.eventually(time.Minute, "booking rotated by an asynchronous invoke", func() bool {
		return p.token("booking").AccessToken != before
	})
}

func (p *path) failureQueue(t *testing.T) {
	if _, err := p.lam.Invoke(p.ctx, &lambda.InvokeInput{FunctionName: aws.String(p.function),
		InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{"action":"rotate","providers":["no-such-provider"]}`)}); err != nil {
		t.Fatal(err)
	}
	var record struct {
		RequestContext struct {
			Condition              string `json:"condition"`
			ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		ResponsePayload struct {
			ErrorMessage string `json:"errorMessage"`
		} `json:"responsePayload"`
	}
	p.eventually(time.Minute, "a record in the failure queue", func() bool {
		out, err := p.sqs.ReceiveMessage(p.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.queueURL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			return false
		}
		for _, m := range out.Messages {
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &record) == nil && strings.Contains(record.ResponsePayload.ErrorMessage, "no-such-provider") {
				return true
			}
		}
		return false
	})
	if record.RequestContext.ApproximateInvokeCount != 2 || record.RequestContext.Condition != "RetriesExhausted" {
		t.Errorf("record %+v: want the first attempt and its one retry", record.RequestContext)
	}
}

func (p *path) warmFallback(t *testing.T) {
	// The secret changes in Secrets Manager, but the provider still knows the old one.
	p.putSecret("checkissuing", "secret the provider does not know yet")
	res := p.refresh(`{"action":"rotate","providers":["checkissuing"]}`)
	if len(res.Results) != 1 || res.Results[0].Status != "refreshed" || !strings.Contains(res.Results[0].Note, "AWSPREVIOUS") {
		t.Fatalf("rotate with a refused secret: %+v", res)
	}
	requests := p.srv.Stats("checkissuing").Requests
	for run := range 3 {
		res := p.refresh(`{"action":"refresh"}`)
		var found bool
		for _, o := range res.Results {
			if o.Provider == "checkissuing" {
				found = true
				if o.Status != "skipped" || !strings.Contains(o.Note, "previous client secret") {
					t.Fatalf("run %d: %+v", run, o)
				}
			}
		}
		if !found {
			t.Fatalf("run %d: %+v", run, res)
		}
	}
	if n := p.srv.Stats("checkissuing").Requests; n != requests {
		t.Fatalf("warm runs made %d token requests after the fallback", n-requests)
	}
	// The provider learns the new secret: a rotation is healthy again.
	p.srv.SetCredentials("checkissuing", "id-checkissuing", "secret the provider does not know yet")
	if res := p.refresh(`{"action":"rotate","providers":["checkissuing"]}`); res.Results[0].Note != "" {
		t.Fatalf("after the provider learnt the secret: %+v", res)
	}
}

func (p *path) timeout(t *testing.T) {
	p.srv.SetFault("hang", oauthtest.Fault{Kind: oauthtest.Slow})
	defer p.srv.SetFault("hang", oauthtest.Fault{})
	payload, failed := p.invoke(p.function, `{"action":"rotate","providers":["hang","ecard"]}`)
	var e struct{ ErrorMessage, ErrorType string }
	if !failed || json.Unmarshal(payload, &e) != nil {
		t.Fatalf("payload %s", payload)
	}
	if strings.Contains(e.ErrorMessage, "timed out") || !strings.Contains(e.ErrorMessage, "hang (") ||
		!strings.Contains(e.ErrorMessage, "no answer") || strings.Contains(e.ErrorMessage, "ecard (") {
		t.Fatalf("error %+v", e)
	}
	if !p.token("ecard").Valid(time.Now()) {
		t.Fatal("ecard not published")
	}
}

func (p *path) consumer(t *testing.T) {
	stack := "token-refresher-e2e-consumer-" + p.id
	buildDir := filepath.Join(p.repo, ".aws-sam", "e2e-consumer-"+p.id)
	t.Cleanup(func() {
		os.RemoveAll(buildDir)
		if os.Getenv("E2E_KEEP") == "" {
			_ = localaws.DeleteStack(context.Background(), p.repo, stack, nil)
		}
	})
	out, err := localaws.Consumer{Repo: p.repo, Stack: stack, RefresherStack: p.stack, TokenParameter: p.prefix + "/ecard",
		PartnerURL: p.srv.APIURL("ecard"), BuildDir: buildDir}.Deploy(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	function := out["ConsumerFunctionName"]
	call := func() (status int, fingerprint string) {
		t.Helper()
		payload, failed := p.invoke(function, `{"path":"/v1/reports"}`)
		var r struct {
			Status           int    `json:"status"`
			TokenFingerprint string `json:"token_fingerprint"`
		}
		if failed || json.Unmarshal(payload, &r) != nil {
			t.Fatalf("consumer: %s", payload)
		}
		return r.Status, r.TokenFingerprint
	}
	published := p.token("ecard")
	if status, fp := call(); status != 200 || fp != tokens.Fingerprint(published.AccessToken) {
		t.Fatalf("consumer got %d with token %s, want 200 with %s", status, fp, tokens.Fingerprint(published.AccessToken))
	}
	// A rotation: the partner now accepts only the new token; the warm consumer's
	// cached one earns a 401, and it reads the parameter again and retries.
	p.refresh(`{"action":"rotate","providers":["ecard"]}`)
	rotated := p.token("ecard")
	api := p.srv.Stats("ecard").APIRequests
	if status, fp := call(); status != 200 || fp != tokens.Fingerprint(rotated.AccessToken) {
		t.Fatalf("after the rotation the consumer got %d with token %s, want 200 with %s", status, fp, tokens.Fingerprint(rotated.AccessToken))
	}
	// The consumer was warm: its cached token earned the 401, then the retry the 200.
	if n := p.srv.Stats("ecard").APIRequests - api; n != 2 {
		t.Fatalf("%d partner requests for the call after the rotation, want the 401 and the retry", n)
	}

	// A partner-side revocation: the partner refuses the published token and no
	// successor is published. Concurrent consumer invocations each read the
	// parameter again, find the refused token, send the conditional rotation (an
	// asynchronous invoke of the refresher) and wait for the successor; the
	// refresher makes one token request for all of them, and each retries with it.
	const concurrent = 4
	p.srv.Revoke("ecard")
	tokenRequests := p.srv.Stats("ecard").Requests
	start := time.Now()
	type answer struct {
		Status           int    `json:"status"`
		TokenFingerprint string `json:"token_fingerprint"`
	}
	answers := make(chan answer, concurrent)
	for range concurrent {
		go func() {
			var a answer
			out, err := p.lam.Invoke(p.ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: []byte(`{"path":"/v1/reports"}`)})
			if err == nil && out.FunctionError == nil {
				_ = json.Unmarshal(out.Payload, &a)
			}
			answers <- a
		}()
	}
	var got []answer
	for range concurrent {
		got = append(got, <-answers)
	}
	recovered := time.Since(start)
	successor := p.token("ecard")
	if successor.AccessToken == rotated.AccessToken {
		t.Fatalf("after the revocation the published token is still %s: no rotation", tokens.Fingerprint(rotated.AccessToken))
	}
	for _, a := range got {
		if a.Status != 200 || a.TokenFingerprint != tokens.Fingerprint(successor.AccessToken) {
			t.Errorf("after the revocation a consumer got %d with token %s, want 200 with %s", a.Status, a.TokenFingerprint, tokens.Fingerprint(successor.AccessToken))
		}
	}
	if n := p.srv.Stats("ecard").Requests - tokenRequests; n != 1 {
		t.Errorf("%d token requests for %d concurrent consumers refused with one token, want 1", n, concurrent)
	}
	t.Logf("%d concurrent consumers recovered from the revocation in %v, with one token request", concurrent, recovered.Round(time.Millisecond))
}
