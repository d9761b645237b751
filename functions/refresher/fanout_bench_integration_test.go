//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/refresher"
)

// BenchmarkFanOut measures the fanned-out cycle at the same N as BenchmarkCycle: the
// same rotation of all N published tokens, which the planner (the handler with
// REFRESH_QUEUE_URL, as main wires it) sends to a FIFO queue in LocalStack, worked
// off by BENCH_WORKERS workers (default 4), each a handler of its own, as each
// execution environment is, taking batches of 8 from the queue and deleting the
// jobs its result does not name as failed: what the event source mapping does with
// MaximumConcurrency 4 and BatchSize 8. The mapping itself runs in
// TestIntegrationFanOut; here the benchmark polls, so that the figure times the
// design and not the emulator's polling schedule.
func BenchmarkFanOut(b *testing.B) {
	bn := setupBench(b)
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("providers=%d", n), func(b *testing.B) { bn.fanout(b, n) })
	}
}

// jobBatch is the event source mapping's BatchSize, the template's WorkerBatchSize.
const jobBatch = 8

func (bn *bench) fanout(b *testing.B, n int) {
	if n <= refresher.InlineRotations {
		// A planner rotates this few providers itself, as without fan-out.
		fmt.Printf("\nbench: providers=%d fanout: a rotation of %d providers or fewer is not queued (refresher.InlineRotations)\n", n, refresher.InlineRotations)
		b.Skip("rotated inline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	regFile := bn.registry(b, n)
	prefix := bn.populate(b, n, regFile)
	workers := awstest.EnvInt(b, "BENCH_WORKERS", 4)
	lat := bn.measureAWS(b, n, prefix)
	ceiling := bn.writeCeiling(b, prefix)

	sq := sqs.NewFromConfig(bn.cfg)
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName("bench-jobs-") + ".fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "300"}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) }()
	vars := map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": prefix, "REFRESH_QUEUE_URL": aws.ToString(q.QueueUrl),
		"PUT_PARAMETER_RATE": "10000"}
	var plannerCalls, workerCalls localaws.Calls
	var times opTimes
	planner := bn.handlerWith(b, vars, &plannerCalls)
	hs := make([]*refresher.Handler, workers)
	for i := range hs {
		hs[i] = bn.handlerWith(b, vars, &workerCalls, times.middleware)
	}

	bn.srv.SetLatency(bn.latency)
	defer bn.srv.SetLatency(0)
	before := bn.srv.TotalRequests()
	b.ResetTimer()
	start := time.Now()
	res, err := planner.Handle(ctx, rotateAll)
	planned := time.Since(start)
	if err != nil || res.Counts()[refresher.StatusQueued] != n {
		b.Fatalf("planner: %v %v", err, res.Counts())
	}

	w, err := workOff(ctx, sq, aws.ToString(q.QueueUrl), hs, func() int { return n }, start, false)
	if err != nil {
		b.Fatal(err)
	}
	cycle := w.cycle
	b.StopTimer()
	provider := bn.srv.TotalRequests() - before
	pc, wc := snapshot(&plannerCalls), snapshot(&workerCalls)
	if wc[opPut] != n || provider != n {
		b.Fatalf("workers wrote %d tokens and asked %d times for %d providers", wc[opPut], provider, n)
	}

	bn.mu.Lock()
	single, ok := bn.single[n]
	bn.mu.Unlock()
	speedup := "n/a (run BenchmarkCycle first)"
	if ok {
		speedup = fmt.Sprintf("%.2f", single.Seconds()/cycle.Seconds())
	}
	writeRate := float64(wc[opPut]) / (cycle - planned).Seconds()
	// The bound: the planner, then each worker's rounds (ceil(N/B)/k batches of
	// ceil(B/C) rounds), each a token request and the round's writes, which take at
	// least a write's time and at least their number over the most PutParameter calls
	// a second this LocalStack serves (on AWS, the write quota plays that part).
	rounds := ceilDiv(ceilDiv(n, jobBatch), workers) * ceilDiv(jobBatch, bn.concurrency)
	perRound := workers * min(jobBatch, bn.concurrency)
	write := max(lat.put, time.Duration(float64(perRound)/ceiling*float64(time.Second)))
	bound := planned + time.Duration(rounds)*(bn.latency+write)
	fmt.Printf("\nbench: providers=%d fanout workers=%d batch=%d max_concurrency=%d latency_ms=%d cycle_ms=%d bound_ms=%d ratio=%.2f planner_ms=%d single_cycle_ms=%d speedup=%s\n",
		n, workers, jobBatch, bn.concurrency, bn.latency.Milliseconds(), cycle.Milliseconds(), bound.Milliseconds(),
		cycle.Seconds()/bound.Seconds(), planned.Milliseconds(), single.Milliseconds(), speedup)
	fmt.Printf("bench: providers=%d fanout bound: planner_ms=%d + %d rounds x (latency %d ms + %d writes: max(PutParameter alone %.1f ms, %d / %.0f PutParameter/s, this LocalStack's ceiling) = %.1f ms)\n",
		n, planned.Milliseconds(), rounds, bn.latency.Milliseconds(), perRound, ms(lat.put), perRound, ceiling, ms(write))
	fmt.Printf("bench: providers=%d fanout planner: %s\n", n, describe(pc))
	fmt.Printf("bench: providers=%d fanout workers: %s provider_calls=%d invocations=%d peak_workers=%d put_per_s=%.1f mean_invocation_ms=%d\n",
		n, describe(wc), provider, w.invocations, w.peak, writeRate, time.Duration(w.handling/w.invocations).Milliseconds())
	fmt.Printf("bench: providers=%d fanout workers' AWS latency in the cycle: %s\n", n, times.describe())
	b.ReportMetric(float64(cycle.Milliseconds()), "fanout_cycle_ms")
	b.ReportMetric(float64(bound.Milliseconds()), "fanout_bound_ms")
	b.ReportMetric(ceiling, "localstack_put_per_s")
	b.ReportMetric(float64(planned.Milliseconds()), "planner_ms")
	b.ReportMetric(writeRate, "fanout_put_per_s")
	b.ReportMetric(0, "ns/op")
}

// workStats is what workOff saw.
type workStats struct {
	refreshed, invocations, peak int64
	handling                     int64         // nanoseconds in Handle, all workers
	cycle                        time.Duration // from start until the last job was refreshed; 0 if never
}

// workOff works off the queue at queueURL with one poller per handler in hs, as
// the event source mapping does with MaximumConcurrency len(hs) and BatchSize
// jobBatch, until n() providers were refreshed or ctx ends. Only the jobs a result
// does not name as failed are deleted; with failuresOK the others come back after
// the queue's visibility timeout, else a failed job stops the work with an error.
func workOff(ctx context.Context, sq *sqs.Client, queueURL string, hs []*refresher.Handler, n func() int, start time.Time, failuresOK bool) (workStats, error) {
	var (
		handling, refreshed, invocations, inFlight, peak atomic.Int64
		doneOnce                                         sync.Once
		cycle                                            time.Duration
	)
	g, gctx := errgroup.WithContext(ctx)
	for _, h := range hs {
		g.Go(func() error {
			for refreshed.Load() < int64(n()) && gctx.Err() == nil {
				out, err := sq.ReceiveMessage(gctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: jobBatch, WaitTimeSeconds: 1})
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
				if len(out.Messages) == 0 {
					continue
				}
				var ev events.SQSEvent
				for _, m := range out.Messages {
					ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
						Body: aws.ToString(m.Body), EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:bench.fifo"})
				}
				raw, _ := json.Marshal(ev)
				for c, p := inFlight.Add(1), peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
				}
				t := time.Now()
				res, err := h.Handle(gctx, raw)
				handling.Add(int64(time.Since(t)))
				inFlight.Add(-1)
				invocations.Add(1)
				if err != nil || len(res.BatchItemFailures) > 0 && !failuresOK {
					return fmt.Errorf("worker: %v, failed jobs %v", err, res.BatchItemFailures)
				}
				failed := map[string]bool{}
				for _, f := range res.BatchItemFailures {
					failed[f.ItemIdentifier] = true
				}
				var del []sqstypes.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					if !failed[aws.ToString(m.MessageId)] {
						del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
					}
				}
				if len(del) > 0 {
					if _, err := sq.DeleteMessageBatch(gctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: del}); err != nil {
						return err
					}
				}
				if refreshed.Add(int64(res.Counts()[refresher.StatusRefreshed])) >= int64(n()) {
					doneOnce.Do(func() { cycle = time.Since(start) })
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return workStats{refreshed: refreshed.Load(), invocations: invocations.Load(), peak: peak.Load(), handling: handling.Load(), cycle: cycle}, err
}

// writeCeiling measures the most PutParameter calls a second this LocalStack serves:
// 32 writers at once (four workers of eight refreshes), 320 overwrites of a
// SecureString as large as a published token, outside every benchmark prefix.
func (bn *bench) writeCeiling(b *testing.B, prefix string) float64 {
	b.Helper()
	ctx := context.Background()
	sc := ssm.NewFromConfig(bn.cfg)
	cur, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(prefix + "/" + benchName(0)), WithDecryption: aws.Bool(true)})
	if err != nil {
		b.Fatal(err)
	}
	scratch := "/" + awstest.UniqueName("bench-ceiling-")
	const writers, each = 32, 10
	var g errgroup.Group
	start := time.Now()
	for w := range writers {
		g.Go(func() error {
			for range each {
				if _, err := sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(fmt.Sprintf("%s/w%02d", scratch, w)), Value: cur.Parameter.Value,
					Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true), Tier: ssmtypes.ParameterTierStandard}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	rate := float64(writers*each) / time.Since(start).Seconds()
	for w := range writers {
		_, _ = sc.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(fmt.Sprintf("%s/w%02d", scratch, w))})
	}
	return rate
}
