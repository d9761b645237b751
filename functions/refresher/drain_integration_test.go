//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/state"
)

// TestIntegrationRotateAllDrainsAcrossRuns: a rotation of all 30 providers at a
// write budget of 5 writes a second, in invocations whose time leaves about two
// seconds of work, reaches about ten of them; it succeeds, naming the others
// pending with the rotation as the reason, and the scheduled runs after it rotate
// the rest at the budget, each naming every provider still waiting, until every
// provider's token was replaced exactly once (one token request each, counted at
// the providers). Then the run is healthy and the next scheduled one idle again:
// one AWS call.
func TestIntegrationRotateAllDrainsAcrossRuns(t *testing.T) {
	d := newDrain(t, 30)
	h, calls := d.handler("5", nil)
	invoke, srv, names, root, cfg := d.invoke, d.srv, d.names, d.root, d.cfg
	requests := func(name string) int { return srv.Stats(name).Requests }
	before := d.publish()

	scheduled := `{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`
	event := `{"action":"rotate","providers":["*"]}`
	reason := ""
	for run := 0; ; run++ {
		if run > 8 {
			t.Fatal("the rotation did not finish in eight runs")
		}
		res, err := invoke(h, event)
		if err != nil {
			t.Fatalf("run %d: got %v, want no error: a rotation waiting for the budget is no failure", run, err)
		}
		c := res.Counts()
		t.Logf("run %d: %v", run, c)
		if c[refresher.StatusFailed] != 0 || c[refresher.StatusRefreshed] > 15 || c[refresher.StatusRefreshed] == 0 {
			t.Fatalf("run %d: got %v, want none failed and some refreshed, at most 15 (two seconds at 5 a second, and the first at once)", run, c)
		}
		for _, o := range res.Results {
			rotated := requests(o.Provider) - before[o.Provider]
			switch o.Status {
			case refresher.StatusPending:
				if reason == "" {
					reason = o.Reason
				}
				if o.Reason != reason || !strings.HasPrefix(reason, "rotation requested at ") || !strings.HasSuffix(reason, ", waiting for the write budget") {
					t.Errorf("run %d: got %s pending with %q, want %q", run, o.Provider, o.Reason, reason)
				}
				if rotated != 0 {
					t.Errorf("run %d: got %s pending after %d token requests, want none", run, o.Provider, rotated)
				}
			case refresher.StatusRefreshed, refresher.StatusSkipped:
				if rotated != 1 {
					t.Errorf("run %d: got %s %s after %d token requests since the rotation, want 1", run, o.Provider, o.Status, rotated)
				}
			default:
				t.Errorf("run %d: got %s %s, want pending, refreshed or skipped", run, o.Provider, o.Status)
			}
		}
		if c[refresher.StatusPending] == 0 {
			if run == 0 {
				t.Fatal("the budget reached every provider in the rotation's own run: nothing drained")
			}
			if res.NextDue == "" {
				t.Fatalf("run %d: the rotation is done, but the run knows no next due time: not healthy", run)
			}
			break
		}
		event = scheduled
	}
	for _, name := range names {
		if got := requests(name) - before[name]; got != 1 {
			t.Errorf("got %d token requests for %s after the rotation, want exactly 1", got, name)
		}
	}
	health, err := (&state.Store{API: ssm.NewFromConfig(cfg), Prefix: root + "/state"}).AllHealth(context.Background())
	if err != nil || len(health) != 0 {
		t.Errorf("got health records %v (%v), want none: every provider healthy", health, err)
	}
	calls.Reset()
	if res, err := invoke(h, scheduled); err != nil || !res.Idle || calls.Total() > 2 {
		t.Fatalf("after the rotation: got %v idle %t after %d AWS calls, want an idle run of at most 2", err, res.Idle, calls.Total())
	}
}

// drain is a registry of n providers of one dialect, their secrets in LocalStack
// and the handlers the tests build on them.
type drain struct {
	t       *testing.T
	cfg     aws.Config
	srv     *oauthtest.Server
	names   []string
	regFile string
	root    string
}

func newDrain(t *testing.T, n int) *drain {
	t.Helper()
	d := &drain{t: t, cfg: awstest.Config(t), srv: oauthtest.NewServer()}
	t.Cleanup(d.srv.Close)
	sm := secretsmanager.NewFromConfig(d.cfg)
	secretBase := awstest.Secrets(t, d.cfg, "drain-")
	d.root = awstest.Parameters(t, d.cfg, "drain-")
	var reg strings.Builder
	reg.WriteString("providers:\n")
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		name := fmt.Sprintf("p%02d", i)
		d.names = append(d.names, name)
		u := d.srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "id-" + name, ClientSecret: "secret " + name})
		reg.WriteString(registry.EntryYAML(name, secretBase+name, oauthtest.Cardlytics.Endpoint(u)))
		g.Go(func() error {
			_, err := localaws.PutSecret(context.Background(), sm, secretBase+name, "id-"+name, "secret "+name)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	d.regFile = filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(d.regFile, []byte(reg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// handler builds the function as main does, at the write budget rate, with the
// extra environment, and a reserve of one second.
func (d *drain) handler(rate string, extra map[string]string) (*refresher.Handler, *localaws.Calls) {
	d.t.Helper()
	vars := map[string]string{"PROVIDERS_FILE": d.regFile, "TOKEN_PARAMETER_PREFIX": d.root + "/tokens",
		"STATE_PARAMETER_PREFIX": d.root + "/state", "PUT_PARAMETER_RATE": rate}
	maps.Copy(vars, extra)
	e, err := loadEnv(func(k string) string { return vars[k] }, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	c, calls := awstest.Counted(d.cfg)
	h := newHandler(c, e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	h.Refresher.Reserve = time.Second
	return h, calls
}

// invoke is one invocation of three seconds: two of work.
func (d *drain) invoke(h *refresher.Handler, event string) (refresher.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.Handle(ctx, json.RawMessage(event))
}

// publish publishes every token without a budget, and returns each provider's
// token requests so far; it returns in a later second than the tokens were issued
// in, since issued_at is whole seconds.
func (d *drain) publish() map[string]int {
	d.t.Helper()
	h, _ := d.handler("0", nil)
	if res, err := h.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`)); err != nil || res.Counts()[refresher.StatusRefreshed] != len(d.names) {
		d.t.Fatalf("publishing: %v %v", err, res.Counts())
	}
	before := map[string]int{}
	for _, name := range d.names {
		before[name] = d.srv.Stats(name).Requests
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	return before
}

// TestIntegrationRotateAllDrainsFannedOut: fanned out, a rotation of all 30
// providers is queued as rotation jobs, but for the few the planner's own share
// writes in its time, and workers at their shares of the write
// budget (6 a second for two workers and the planner: 2 each), in invocations with
// two seconds of work, cannot write a batch of 8: each fails the jobs it did not
// reach with "write budget" and returns exactly those in batchItemFailures, the
// queue delivers them again, and every provider's token is replaced exactly once.
func TestIntegrationRotateAllDrainsFannedOut(t *testing.T) {
	d := newDrain(t, 30)
	ctx := context.Background()
	sq := sqs.NewFromConfig(d.cfg)
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName("drain-jobs-") + ".fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	before := d.publish()
	fanout := map[string]string{"REFRESH_QUEUE_URL": aws.ToString(q.QueueUrl), "WORKER_CONCURRENCY": "2"}
	planner, _ := d.handler("6", fanout)
	// The planner refreshes what its own share writes in its time and queues the rest.
	res, err := d.invoke(planner, `{"action":"rotate","providers":["*"]}`)
	if c := res.Counts(); err != nil || c[refresher.StatusQueued]+c[refresher.StatusRefreshed] != len(d.names) || c[refresher.StatusQueued] == 0 {
		t.Fatalf("planner: got %v %v, want every provider queued or refreshed, some queued", err, c)
	}
	workers := []*refresher.Handler{}
	for range 2 {
		h, _ := d.handler("6", fanout)
		workers = append(workers, h)
	}
	rotated := func() int {
		k := 0
		for _, name := range d.names {
			if d.srv.Stats(name).Requests > before[name] {
				k++
			}
		}
		return k
	}
	returned, empty := 0, 0
	for i := 0; empty < 3; i++ {
		if i > 60 {
			t.Fatalf("the queue was not worked off in 60 batches: %d of %d rotated", rotated(), len(d.names))
		}
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: jobBatch, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			if rotated() == len(d.names) {
				empty++
			}
			continue
		}
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:drain.fifo"})
		}
		raw, _ := json.Marshal(ev)
		res, err := d.invoke(workers[i%len(workers)], string(raw))
		if err != nil {
			t.Fatalf("worker: got %v, want the invocation to succeed", err)
		}
		failed := map[string]bool{}
		for _, f := range res.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for k, m := range out.Messages {
			o := res.Results[k]
			switch {
			case o.Status == refresher.StatusFailed && strings.Contains(o.Error, "write budget") && failed[aws.ToString(m.MessageId)]:
				returned++
				continue
			case o.Status == refresher.StatusRefreshed && !failed[aws.ToString(m.MessageId)]:
			case o.Status == refresher.StatusSkipped && !failed[aws.ToString(m.MessageId)]: // done in an earlier delivery
			default:
				t.Fatalf("worker: got %s %s (%s%s), returned %t; want refreshed, or failed for the write budget and returned",
					o.Provider, o.Status, o.Reason, o.Error, failed[aws.ToString(m.MessageId)])
			}
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(k)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) > 0 {
			if _, err := sq.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: q.QueueUrl, Entries: del}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if returned == 0 {
		t.Fatal("no worker batch was cut short by the write budget: nothing was returned to the queue")
	}
	t.Logf("%d jobs returned to the queue for the write budget", returned)
	for _, name := range d.names {
		if got := d.srv.Stats(name).Requests - before[name]; got != 1 {
			t.Errorf("got %d token requests for %s after the rotation, want exactly 1", got, name)
		}
	}
}
