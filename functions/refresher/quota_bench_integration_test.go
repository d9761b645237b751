//go:build integration

package main

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/quotaproxy"
	"github.com/token-refresher/token-refresher/internal/refresher"
)

// BenchmarkQuota measures a rotation of all BENCH_QUOTA_PROVIDERS (default 200)
// providers through a loopback proxy in front of LocalStack that enforces a
// PutParameter quota of BENCH_QUOTA_RATE (default 3) a second the way SSM does
// (internal/quotaproxy), in both modes: one invocation, and fanned out to
// BENCH_WORKERS workers (default 4) with WORKER_CONCURRENCY set to match, each with
// the write budget PUT_PARAMETER_RATE = BENCH_QUOTA_BUDGET (default 2.5) and with
// no budget. It reports the throttled calls, the time against the bound
// N / budget, and how many providers were published.
func BenchmarkQuota(b *testing.B) {
	bn := setupBench(b)
	n := awstest.EnvInt(b, "BENCH_QUOTA_PROVIDERS", 200)
	quota, err := strconv.ParseFloat(envStr("BENCH_QUOTA_RATE", "3"), 64)
	if err != nil || quota <= 0 {
		b.Fatalf("BENCH_QUOTA_RATE: want PutParameter calls a second, got %q", envStr("BENCH_QUOTA_RATE", ""))
	}
	budget, err := strconv.ParseFloat(envStr("BENCH_QUOTA_BUDGET", "2.5"), 64)
	if err != nil || budget <= 0 {
		b.Fatalf("BENCH_QUOTA_BUDGET: want PutParameter calls a second, got %q", envStr("BENCH_QUOTA_BUDGET", ""))
	}
	if n > len(bn.urls) {
		b.Fatalf("BENCH_QUOTA_PROVIDERS=%d: at most the largest of BENCH_PROVIDERS and BENCH_FOOTPRINT_PROVIDERS (%d)", n, len(bn.urls))
	}
	for _, mode := range []string{"single", "fanout"} {
		for _, rate := range []float64{budget, 0} {
			name := fmt.Sprintf("mode=%s/budget=%g", mode, rate)
			if rate == 0 {
				name = fmt.Sprintf("mode=%s/budget=off", mode)
			}
			b.Run(name, func(b *testing.B) { bn.quota(b, n, mode, quota, rate) })
		}
	}
}

func (bn *bench) quota(b *testing.B, n int, mode string, quota, budget float64) {
	// Without a budget a run ends when every write got through or gave up after the
	// SDK's retries; fanned out, failed jobs come back, for at most this long.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	regFile := bn.registry(b, n)
	prefix := bn.populate(b, n, regFile)
	up := aws.ToString(bn.cfg.BaseEndpoint)
	proxy, err := quotaproxy.Start(up, quota, quotaproxy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	// Every call of the function goes through the proxy; the benchmark's own
	// polling of the queue goes straight to LocalStack.
	through := bn.cfg.Copy()
	through.BaseEndpoint = aws.String(proxy.URL())
	vars := map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": prefix,
		"PUT_PARAMETER_RATE": strconv.FormatFloat(budget, 'g', -1, 64)}
	workers := awstest.EnvInt(b, "BENCH_WORKERS", 4)

	bn.srv.SetLatency(bn.latency)
	defer bn.srv.SetLatency(0)
	var calls localaws.Calls
	var published int
	var cycle time.Duration
	b.ResetTimer()
	start := time.Now()
	switch mode {
	case "single":
		res, err := bn.handlerAt(b, through, vars, &calls).Handle(ctx, rotateAll)
		cycle = time.Since(start)
		published = res.Counts()[refresher.StatusRefreshed]
		if err != nil && budget > 0 {
			b.Fatalf("rotation at the budget: %v (%v)", err, res.Counts())
		}
	case "fanout":
		sq := sqs.NewFromConfig(bn.cfg)
		q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName("bench-quota-") + ".fifo"),
			Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "60"}})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _, _ = sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) }()
		vars["REFRESH_QUEUE_URL"] = aws.ToString(q.QueueUrl)
		vars["WORKER_CONCURRENCY"] = strconv.Itoa(workers)
		hs := make([]*refresher.Handler, workers)
		for i := range hs {
			hs[i] = bn.handlerAt(b, through, vars, &calls)
		}
		// The planner runs beside the workers, as the event source mapping starts
		// them once its jobs are in the queue: it refreshes its own share of the
		// providers meanwhile. Until it is done the workers cannot know how many it
		// kept, so they wait for all n.
		planner := bn.handlerAt(b, through, vars, &calls)
		var kept, planned atomic.Int64
		plannerDone := make(chan error, 1)
		go func() {
			res, err := planner.Handle(ctx, rotateAll)
			c := res.Counts()
			if err == nil && c[refresher.StatusQueued]+c[refresher.StatusRefreshed] != n {
				err = fmt.Errorf("got %v, want %d queued or refreshed", c, n)
			}
			kept.Store(int64(c[refresher.StatusRefreshed]))
			planned.Store(int64(time.Since(start)))
			plannerDone <- err
		}()
		left := func() int {
			if planned.Load() == 0 {
				return n
			}
			return n - int(kept.Load())
		}
		w, err := workOff(ctx, sq, aws.ToString(q.QueueUrl), hs, left, start, true)
		if err != nil {
			b.Fatal(err)
		}
		if err := <-plannerDone; err != nil {
			b.Fatalf("planner: %v", err)
		}
		cycle, published = 0, int(w.refreshed+kept.Load())
		if w.cycle > 0 { // zero: never all published
			cycle = max(w.cycle, time.Duration(planned.Load()))
		}
		cycle = cmp.Or(cycle, time.Since(start))
		fmt.Printf("\nbench: quota planner kept=%d planner_ms=%d\n", kept.Load(), time.Duration(planned.Load()).Milliseconds())
	}
	b.StopTimer()
	c := snapshot(&calls)
	// The bound: N writes at the budget, in both modes: fanned out, the planner
	// spends its share beside the workers'.
	bound := time.Duration(float64(n) / budget * float64(time.Second))
	ratio := "n/a"
	if budget > 0 {
		ratio = fmt.Sprintf("%.2f", cycle.Seconds()/bound.Seconds())
	}
	label := strconv.FormatFloat(budget, 'g', -1, 64)
	if budget == 0 {
		label = "off"
	}
	fmt.Printf("\nbench: quota providers=%d mode=%s workers=%d proxy_put_per_s=%g budget=%s throttled=%d put_allowed=%d put_calls=%d cycle_ms=%d bound_ms=%s ratio=%s published=%d/%d\n",
		n, mode, map[string]int{"single": 1, "fanout": workers}[mode], quota, label, proxy.Throttled(), proxy.Allowed(), c[opPut],
		cycle.Milliseconds(), map[bool]string{true: strconv.FormatInt(bound.Milliseconds(), 10), false: "n/a"}[budget > 0], ratio, published, n)
	b.ReportMetric(float64(proxy.Throttled()), "throttled")
	b.ReportMetric(float64(cycle.Milliseconds()), "cycle_ms")
	b.ReportMetric(float64(published), "published")
	b.ReportMetric(0, "ns/op")
	if budget > 0 && published != n {
		b.Fatalf("published %d of %d at the budget", published, n)
	}
}
