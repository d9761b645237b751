//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fanoutProviders is how many healthy providers TestIntegrationFanOut runs through
// the queue.
const fanoutProviders = 1000

// failing are the providers whose endpoint always fails.
var failing = []string{"fail-0", "fail-1", "fail-2"}

// TestIntegrationFanOut deploys a fanned-out stack of 1,000 providers (and three
// whose endpoint always fails) and lets its schedule run it: the planner sends the
// due providers to the FIFO queue, workers (up to four at once) refresh them in
// batches of eight. Every token is published once per due cycle, the failing
// providers' jobs end in the dead-letter queue after three attempts, and a
// duplicated job changes nothing. A rotation of all providers, too large for the
// planner to do itself, goes through the workers and replaces every token once.
func TestIntegrationFanOut(t *testing.T) {
	t.Parallel()
	var providers []string
	for i := range fanoutProviders {
		providers = append(providers, fmt.Sprintf("p%04d", i))
	}
	providers = append(providers, failing...)
	p := deploy(t, "fanout", providers, "MaxConcurrency=8 PerProviderMetrics=false PutParameterRate=0")
	for _, name := range failing {
		p.srv.SetFault(name, oauthtest.Fault{Kind: oauthtest.ServerError, Status: 500})
	}
	jobs, dead := p.stackOutput("RefreshJobsQueueUrl"), p.stackOutput("RefreshJobsDeadLetterQueueUrl")

	// A refresh job and a rotation job of one failing provider, sent together so
	// that a worker takes them in one batch and merges them: when the provider
	// fails, both messages must come back, so the rotation is not lost but ends,
	// after its retries, in the dead-letter queue beside the refresh.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := p.sqs.SendMessageBatch(p.ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(jobs), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("refresh"), MessageBody: aws.String(fmt.Sprintf(`{"provider":%q,"planned_at":%q}`, failing[0], now)),
			MessageGroupId: aws.String(failing[0]), MessageDeduplicationId: aws.String("merged-refresh-" + p.id)},
		{Id: aws.String("rotate"), MessageBody: aws.String(fmt.Sprintf(`{"provider":%q,"planned_at":%q,"rotate":true,"version":0}`, failing[0], now)),
			MessageGroupId: aws.String(failing[0]), MessageDeduplicationId: aws.String("merged-rotate-" + p.id)},
	}}); err != nil {
		t.Fatal(err)
	}

	// The event source mapping is the template's: batches of 8, four workers at most.
	esm, err := p.lam.ListEventSourceMappings(p.ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(p.function)})
	if err != nil || len(esm.EventSourceMappings) != 1 {
		t.Fatalf("event source mappings: %v %+v", err, esm)
	}
	m := esm.EventSourceMappings[0]
	if aws.ToInt32(m.BatchSize) != 8 || m.ScalingConfig == nil || aws.ToInt32(m.ScalingConfig.MaximumConcurrency) != 4 ||
		!slices.Contains(m.FunctionResponseTypes, "ReportBatchItemFailures") {
		t.Fatalf("event source mapping %+v", m)
	}

	start := time.Now()
	published := p.eventuallyPublished(8*time.Minute, providers[:fanoutProviders], 1)
	t.Logf("%d tokens published through the queue %s after the stack was up", fanoutProviders, published.Sub(start).Round(time.Second))
	// Once: one token request and one write per provider, whatever the planner's
	// runs every minute and the queue's redeliveries did meanwhile.
	for _, name := range providers[:fanoutProviders] {
		if st := p.srv.Stats(name); len(st.Issued) != 1 || st.Requests != 1 {
			t.Fatalf("%s: %d token requests, %d tokens issued in one due cycle", name, st.Requests, len(st.Issued))
		}
	}
	peak, streams := p.workerConcurrency()
	t.Logf("workers: %d execution environments, at most %d invocations at once", streams, peak)
	if peak < 2 {
		t.Errorf("workers ran one at a time (%d environments)", streams)
	}

	// A duplicate of a job already done, delivered again (SQS delivers at least
	// once; a new deduplication id, so SQS passes it on): nothing changes.
	dup := "p0001"
	before := p.token(dup)
	body := fmt.Sprintf(`{"provider":%q,"planned_at":%q}`, dup, start.UTC().Format(time.RFC3339Nano))
	if _, err := p.sqs.SendMessage(p.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(jobs), MessageBody: aws.String(body),
		MessageGroupId: aws.String(dup), MessageDeduplicationId: aws.String("duplicate-" + p.id)}); err != nil {
		t.Fatal(err)
	}
	p.eventually(2*time.Minute, "the duplicate job worked off", func() bool {
		return p.loggedLine(func(line string) bool {
			return strings.Contains(line, `"provider":"`+dup+`","status":"skipped"`) && strings.Contains(line, "not due any more")
		})
	})
	if after := p.token(dup); after.AccessToken != before.AccessToken || p.version(dup) != 1 || p.srv.Stats(dup).Requests != 1 {
		t.Fatalf("the duplicate changed %s: version %d, %d token requests", dup, p.version(dup), p.srv.Stats(dup).Requests)
	}

	// A rotation of every provider is more than the planner does itself: it queues
	// them, and the workers replace every token once, fresh as they are.
	res := p.refresh(`{"action":"rotate","providers":["*"]}`)
	queued := 0
	for _, o := range res.Results {
		if o.Status == "queued" {
			queued++
		}
	}
	if queued != len(providers) {
		t.Fatalf("rotate all: %d of %d queued", queued, len(providers))
	}
	p.eventuallyPublished(8*time.Minute, providers[:fanoutProviders], 2)
	for _, name := range providers[:fanoutProviders] {
		if st := p.srv.Stats(name); len(st.Issued) != 2 {
			t.Fatalf("%s: %d tokens issued after one rotation", name, len(st.Issued))
		}
	}
	// A rotation job delivered again after its rotation was done (SQS delivers at
	// least once), planned later than the new token's issued_at as the published
	// second reads it: the parameter's version says it is done, nothing changes.
	rotated := p.token(dup)
	body = fmt.Sprintf(`{"provider":%q,"planned_at":%q,"rotate":true,"version":1}`, dup, time.Now().UTC().Add(time.Second).Format(time.RFC3339Nano))
	if _, err := p.sqs.SendMessage(p.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(jobs), MessageBody: aws.String(body),
		MessageGroupId: aws.String(dup), MessageDeduplicationId: aws.String("duplicate-rotation-" + p.id)}); err != nil {
		t.Fatal(err)
	}
	p.eventually(2*time.Minute, "the duplicate rotation job worked off", func() bool {
		return p.loggedLine(func(line string) bool {
			return strings.Contains(line, `"provider":"`+dup+`","status":"skipped"`) && strings.Contains(line, "rotated since the job was planned")
		})
	})
	if after := p.token(dup); after.AccessToken != rotated.AccessToken || p.version(dup) != 2 || len(p.srv.Stats(dup).Issued) != 2 {
		t.Fatalf("got version %d and %d tokens issued for %s after a duplicate rotation job, want version 2 and 2 tokens", p.version(dup), len(p.srv.Stats(dup).Issued), dup)
	}

	// Failing jobs: three attempts, then the dead-letter queue; nothing else there.
	// (Checked last: their retries ran alongside everything above.)
	deadJobs, deadRotation := map[string]bool{}, false
	p.eventually(6*time.Minute, "the failing providers' jobs in the dead-letter queue", func() bool {
		out, err := p.sqs.ReceiveMessage(p.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dead), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, VisibilityTimeout: 600, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
		if err != nil {
			return false
		}
		for _, msg := range out.Messages {
			var j struct{ Provider string }
			if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &j); err != nil || !slices.Contains(failing, j.Provider) {
				t.Fatalf("dead-lettered job %s", aws.ToString(msg.Body))
			}
			deadJobs[j.Provider] = true
			if j.Provider == failing[0] && strings.Contains(aws.ToString(msg.Body), `"rotate":true`) {
				deadRotation = true
			}
			t.Logf("dead-lettered: %s, received %s times", aws.ToString(msg.Body), msg.Attributes["ApproximateReceiveCount"])
		}
		return len(deadJobs) == len(failing) && deadRotation
	})
	for _, name := range failing {
		// Each job was tried three times (maxReceiveCount), each try four attempts
		// at the endpoint (the client retries a 500 three times).
		if st := p.srv.Stats(name); st.Requests < 3*4 {
			t.Errorf("%s: %d token requests before the dead-letter queue, want at least 12", name, st.Requests)
		}
	}

}

// stackOutput is one of the stack's outputs.
func (p *path) stackOutput(key string) string {
	p.t.Helper()
	if p.outputs[key] == "" {
		p.t.Fatalf("no output %s: %v", key, p.outputs)
	}
	return p.outputs[key]
}

// version is the version of a provider's parameter: how often it was written.
func (p *path) version(name string) int64 {
	p.t.Helper()
	out, err := p.ssm.GetParameter(p.ctx, &ssm.GetParameterInput{Name: aws.String(p.prefix + "/" + name)})
	if err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	return out.Parameter.Version
}

// eventuallyPublished waits until every provider's parameter holds a valid token of
// that provider at exactly version, and fails at once when any goes past it (a
// token published twice in one cycle). It returns when they all were.
func (p *path) eventuallyPublished(limit time.Duration, providers []string, version int64) time.Time {
	p.t.Helper()
	want := map[string]bool{}
	for _, name := range providers {
		want[p.prefix+"/"+name] = true
	}
	p.eventually(limit, fmt.Sprintf("%d tokens at version %d", len(providers), version), func() bool {
		done := 0
		pages := ssm.NewGetParametersByPathPaginator(p.ssm, &ssm.GetParametersByPathInput{Path: aws.String(p.prefix),
			WithDecryption: aws.Bool(true), MaxResults: aws.Int32(10)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(p.ctx)
			if err != nil {
				return false
			}
			for _, prm := range page.Parameters {
				name := aws.ToString(prm.Name)
				if !want[name] {
					continue
				}
				if prm.Version > version {
					p.t.Fatalf("%s written %d times", name, prm.Version)
				}
				tok, err := tokens.Parse([]byte(aws.ToString(prm.Value)))
				if err == nil && prm.Version == version && tok.Valid(time.Now()) && p.prefix+"/"+tok.Provider == name {
					done++
				}
			}
		}
		return done == len(want)
	})
	return time.Now()
}

// workerConcurrency reads the function's logs: how many execution environments ran
// workers, and the most worker invocations that overlapped in time (each from its
// platform.report record: its end, and its duration before it).
func (p *path) workerConcurrency() (peak, environments int) {
	p.t.Helper()
	type span struct{ start, end time.Time }
	byStream := map[string][]string{} // request ids of worker runs, by stream
	reports := map[string]span{}      // by request id
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(p.logs, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + p.function)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(p.ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		for _, e := range page.Events {
			var rec struct {
				Time      time.Time `json:"time"`
				Type      string    `json:"type"`
				RequestID string    `json:"requestId"`
				Trigger   string    `json:"trigger"`
				Record    struct {
					RequestID string             `json:"requestId"`
					Metrics   map[string]float64 `json:"metrics"`
				} `json:"record"`
			}
			if json.Unmarshal([]byte(aws.ToString(e.Message)), &rec) != nil {
				continue
			}
			switch {
			case rec.Type == "platform.report":
				end := rec.Time
				reports[rec.Record.RequestID] = span{end.Add(-time.Duration(rec.Record.Metrics["durationMs"] * float64(time.Millisecond))), end}
			case rec.Trigger == "queue" && rec.RequestID != "":
				stream := aws.ToString(e.LogStreamName)
				byStream[stream] = append(byStream[stream], rec.RequestID)
			}
		}
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, ids := range byStream {
		for _, id := range ids {
			if s, ok := reports[id]; ok {
				edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
			}
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta // an end before a start at the same instant
		}
		return edges[i].at.Before(edges[j].at)
	})
	cur := 0
	for _, e := range edges {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak, len(byStream)
}
