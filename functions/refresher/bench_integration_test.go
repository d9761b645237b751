//go:build integration

package main

// The benchmark behind `make bench` (bench.mk, scripts/bench, docs/performance.md).
// It runs the real handler (newHandler, as main wires it) against LocalStack and
// fake token endpoints (internal/oauthtest) that answer after a latency L, and measures:
//
//   - BenchmarkCycle/providers=N: the time of a cycle in which all N providers are
//     due (a rotate ["*"] over N published tokens), against the bound
//     L × ceil(N/C) + the unavoidable AWS calls, timed against LocalStack; the AWS
//     and provider calls of that busy cycle; and of an idle cycle (nothing due), in
//     a cold handler (empty secrets cache) and a warm one.
//   - BenchmarkFootprint: the size of the Lambda binary, the peak RSS of one
//     invocation at 1,000 providers (/usr/bin/time -v on the command, with the fake
//     providers served from this process), and the time from exec to the handler.
//
// Settings: BENCH_LATENCY_MS (default 200), BENCH_PROVIDERS (default "10,100,1000"),
// BENCH_FOOTPRINT_PROVIDERS (default 1000), MAX_CONCURRENCY (the function's own, default 8).
// Every figure is printed as a "bench: ..." line and reported with b.ReportMetric.
// AWS calls are counted in the SDK (localaws.Calls), provider calls by the fake server.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// benchSecretPrefix names the benchmark's secrets. They are fixed, so a LocalStack
// that is still running from an earlier `make bench` is not seeded again.
const benchSecretPrefix = "token-refresher-bench/"

const (
	opGetByPath = "SSM.GetParametersByPath"
	opPut       = "SSM.PutParameter"
	opBatchGet  = "Secrets Manager.BatchGetSecretValue"
	opGet       = "Secrets Manager.GetSecretValue"
	opGetOne    = "SSM.GetParameter"
	opGetMany   = "SSM.GetParameters"
)

var (
	rotateAll    = json.RawMessage(`{"action":"rotate","providers":["*"]}`)
	refreshEvent = json.RawMessage(`{"action":"refresh"}`)
	// scheduleEvent is what the schedule rule sends: the run that may end after the
	// run record when nothing is due.
	scheduleEvent = json.RawMessage(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
)

// reconcileEvery is how many scheduled runs of 5 minutes share one full read: the
// refresher reads every token at least hourly (refresher.DefaultReconcile).
const reconcileEvery = int(refresher.DefaultReconcile / (5 * time.Minute))

// bench is what every benchmark shares: one fake server hosting the largest N's
// providers, their secrets in LocalStack, and the populated parameter prefixes.
type bench struct {
	cfg         aws.Config
	srv         *oauthtest.Server
	latency     time.Duration
	concurrency int
	urls        []string // token URL of provider i

	mu       sync.Mutex
	seeded   int                   // providers 0..seeded-1 have their secret in LocalStack
	prefixes map[int]string        // N → a prefix where all N tokens are published
	single   map[int]time.Duration // N → BenchmarkCycle's busy cycle, for BenchmarkFanOut
}

var (
	benchOnce   sync.Once
	sharedBench *bench
)

func setupBench(b *testing.B) *bench {
	b.Helper()
	benchOnce.Do(func() {
		cfg := awstest.Config(b)
		bn := &bench{cfg: cfg, srv: oauthtest.NewServer(), latency: time.Duration(awstest.EnvInt(b, "BENCH_LATENCY_MS", 200)) * time.Millisecond,
			concurrency: awstest.EnvInt(b, "MAX_CONCURRENCY", refresher.DefaultMaxConcurrency), prefixes: map[int]string{},
			single: map[int]time.Duration{}}
		// Providers are added up to the largest N any benchmark asks for.
		for i := range max(slices.Max(benchSizes(b)), awstest.EnvInt(b, "BENCH_FOOTPRINT_PROVIDERS", 1000)) {
			name, d := benchName(i), oauthtest.Dialects()[i%len(oauthtest.Dialects())]
			bn.urls = append(bn.urls, bn.srv.Add(oauthtest.Provider{Name: name, Dialect: d, ClientID: "bench-id-" + name, ClientSecret: "bench-secret-" + name}))
		}
		sharedBench = bn
	})
	if sharedBench == nil {
		b.Fatal("benchmark setup failed earlier")
	}
	return sharedBench
}

func benchName(i int) string { return fmt.Sprintf("p%04d", i) }

func benchSizes(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(envStr("BENCH_PROVIDERS", "10,100,1000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 10000 {
			b.Fatalf("BENCH_PROVIDERS=%q: want a comma-separated list of numbers from 1 to 10000", os.Getenv("BENCH_PROVIDERS"))
		}
		out = append(out, n)
	}
	return out
}

// registry writes the registry of the first n providers and returns its path.
func (bn *bench) registry(b *testing.B, n int) string {
	b.Helper()
	var reg strings.Builder
	reg.WriteString("providers:\n")
	for i := range n {
		d := oauthtest.Dialects()[i%len(oauthtest.Dialects())]
		reg.WriteString(registry.EntryYAML(benchName(i), benchSecretPrefix+benchName(i), d.Endpoint(bn.urls[i])))
	}
	path := filepath.Join(b.TempDir(), "providers.yaml")
	if err := os.WriteFile(path, []byte(reg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// seedSecrets makes sure the first n providers' secrets hold their credentials,
// reading 20 at a time and writing only those missing or different.
func (bn *bench) seedSecrets(b *testing.B, n int) {
	b.Helper()
	bn.mu.Lock()
	defer bn.mu.Unlock()
	if n <= bn.seeded {
		return
	}
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(bn.cfg)
	start := time.Now()
	var missing []int
	for lo := bn.seeded; lo < n; lo += 20 {
		hi := min(lo+20, n)
		ids := make([]string, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ids = append(ids, benchSecretPrefix+benchName(i))
		}
		ok := map[string]bool{}
		if out, err := sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}); err == nil {
			for _, v := range out.SecretValues {
				name := strings.TrimPrefix(aws.ToString(v.Name), benchSecretPrefix)
				var c struct {
					ClientID     string `json:"client_id"`
					ClientSecret string `json:"client_secret"`
				}
				_ = json.Unmarshal([]byte(aws.ToString(v.SecretString)), &c)
				ok[name] = c.ClientID == "bench-id-"+name && c.ClientSecret == "bench-secret-"+name
			}
		}
		for i := lo; i < hi; i++ {
			if !ok[benchName(i)] {
				missing = append(missing, i)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, i := range missing {
		g.Go(func() error {
			name := benchName(i)
			_, err := localaws.PutSecret(gctx, sm, benchSecretPrefix+name, "bench-id-"+name, "bench-secret-"+name)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	bn.seeded = n
	b.Logf("secrets for %d providers ready in %s (%d written)", n, time.Since(start).Round(time.Millisecond), len(missing))
}

// handler returns the function as main wires it, for the first n providers under
// prefix, with calls counting its AWS calls. Each call is a new, cold handler.
func (bn *bench) handler(b *testing.B, regFile, prefix string, calls *localaws.Calls, more ...func(*middleware.Stack) error) *refresher.Handler {
	b.Helper()
	return bn.handlerWith(b, map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": prefix}, calls, more...)
}

// handlerWith is handler with more of the function's environment: vars must name
// PROVIDERS_FILE and TOKEN_PARAMETER_PREFIX.
func (bn *bench) handlerWith(b *testing.B, vars map[string]string, calls *localaws.Calls, more ...func(*middleware.Stack) error) *refresher.Handler {
	b.Helper()
	return bn.handlerAt(b, bn.cfg, vars, calls, more...)
}

// handlerAt is handlerWith with an AWS configuration of its own, such as one whose
// endpoint is a proxy in front of LocalStack.
func (bn *bench) handlerAt(b *testing.B, base aws.Config, vars map[string]string, calls *localaws.Calls, more ...func(*middleware.Stack) error) *refresher.Handler {
	b.Helper()
	cfg := base.Copy()
	cfg.APIOptions = append(append(append([]func(*middleware.Stack) error{}, base.APIOptions...), calls.Middleware), more...)
	vars = maps.Clone(vars)
	vars["MAX_CONCURRENCY"] = os.Getenv("MAX_CONCURRENCY")
	// The concurrency-bound figures: a budget above what the emulator can write,
	// unless the benchmark names one.
	if _, ok := vars["PUT_PARAMETER_RATE"]; !ok {
		vars["PUT_PARAMETER_RATE"] = cmp.Or(os.Getenv("PUT_PARAMETER_RATE"), "10000")
	}
	vars["STATE_PARAMETER_PREFIX"] = strings.TrimSuffix(vars["TOKEN_PARAMETER_PREFIX"], "/tokens") + "/state"
	e, err := loadEnv(func(k string) string { return vars[k] }, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Logs and EMF metrics are produced as in Lambda, and thrown away.
	return newHandler(cfg, e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
}

// populate publishes tokens for the first n providers under a new prefix, with no
// provider latency, and returns the prefix.
func (bn *bench) populate(b *testing.B, n int, regFile string) string {
	b.Helper()
	bn.mu.Lock()
	prefix, ok := bn.prefixes[n]
	bn.mu.Unlock()
	if ok {
		return prefix
	}
	bn.seedSecrets(b, n)
	prefix = "/" + awstest.UniqueName("bench-") + fmt.Sprintf("/n%d/tokens", n)
	bn.srv.SetLatency(0)
	start := time.Now()
	res, err := bn.handler(b, regFile, prefix, &localaws.Calls{}).Handle(context.Background(), refreshEvent)
	if err != nil {
		b.Fatalf("first publish: %v", err)
	}
	if c := res.Counts(); c[refresher.StatusRefreshed] != n {
		b.Fatalf("first publish: %v", c)
	}
	b.Logf("%d tokens published under %s in %s", n, prefix, time.Since(start).Round(time.Millisecond))
	bn.mu.Lock()
	bn.prefixes[n] = prefix
	bn.mu.Unlock()
	return prefix
}

// awsLatency is the median time of one call of each kind the cycle cannot avoid,
// measured one at a time against LocalStack.
type awsLatency struct{ getByPath, batchGet, put time.Duration }

func (bn *bench) measureAWS(b *testing.B, n int, prefix string) awsLatency {
	b.Helper()
	ctx := context.Background()
	sc, sm := ssm.NewFromConfig(bn.cfg), secretsmanager.NewFromConfig(bn.cfg)
	const samples = 10
	var lat awsLatency

	// GetParametersByPath: the pages of the populated prefix, ten to a page, decrypted.
	var ds []time.Duration
	pg := ssm.NewGetParametersByPathPaginator(sc, &ssm.GetParametersByPathInput{Path: aws.String(prefix), Recursive: aws.Bool(true),
		WithDecryption: aws.Bool(true), MaxResults: aws.Int32(10)})
	for pg.HasMorePages() && len(ds) < samples {
		t := time.Now()
		if _, err := pg.NextPage(ctx); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
	}
	lat.getByPath = median(ds)

	// BatchGetSecretValue of 20 (or all n, when fewer) of the secrets.
	ds = ds[:0]
	ids := make([]string, 0, 20)
	for i := range min(n, 20) {
		ids = append(ids, benchSecretPrefix+benchName(i))
	}
	for range samples {
		t := time.Now()
		if _, err := sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
	}
	lat.batchGet = median(ds)

	// PutParameter: a SecureString of a published token's size, overwritten, outside
	// the prefix so the cycles never read it.
	cur, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(prefix + "/" + benchName(0)), WithDecryption: aws.Bool(true)})
	if err != nil {
		b.Fatal(err)
	}
	scratch := "/" + awstest.UniqueName("bench-scratch-") + "/token"
	ds = ds[:0]
	for range samples {
		t := time.Now()
		if _, err := sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(scratch), Value: cur.Parameter.Value,
			Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true), Tier: ssmtypes.ParameterTierStandard,
			Description: aws.String("token-refresher benchmark: PutParameter latency")}); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
	}
	lat.put = median(ds)
	_, _ = sc.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(scratch)})
	return lat
}

// BenchmarkCycle measures a busy cycle (all N due) against its bound, and counts the
// calls of busy and idle cycles.
func BenchmarkCycle(b *testing.B) {
	bn := setupBench(b)
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("providers=%d", n), func(b *testing.B) { bn.cycle(b, n) })
	}
}

func (bn *bench) cycle(b *testing.B, n int) {
	ctx := context.Background()
	regFile := bn.registry(b, n)
	prefix := bn.populate(b, n, regFile)
	lat := bn.measureAWS(b, n, prefix)
	c := bn.concurrency
	slots := ceilDiv(n, c)
	awsBound := time.Duration(ceilDiv(n, 10))*lat.getByPath + time.Duration(ceilDiv(n, 20))*lat.batchGet + time.Duration(slots)*lat.put
	bound := time.Duration(slots)*bn.latency + awsBound

	// Busy: every token published and all of them rotated, in one warm handler (a
	// rotation drops the cached secrets, so they are read again as on a cold start).
	var calls localaws.Calls
	var times opTimes
	h := bn.handler(b, regFile, prefix, &calls, times.middleware)
	bn.srv.SetLatency(bn.latency)
	defer bn.srv.SetLatency(0)
	var busy time.Duration
	var busyCalls map[string]int
	var busyProvider int
	b.ResetTimer()
	for range b.N {
		calls.Reset()
		times.reset()
		before := bn.srv.TotalRequests()
		start := time.Now()
		res, err := h.Handle(ctx, rotateAll)
		busy += time.Since(start)
		if err != nil {
			b.Fatalf("busy cycle: %v", err)
		}
		if got := res.Counts()[refresher.StatusRefreshed]; got != n {
			b.Fatalf("busy cycle refreshed %d of %d", got, n)
		}
		busyCalls = snapshot(&calls)
		busyProvider = bn.srv.TotalRequests() - before
	}
	b.StopTimer()
	cycle := busy / time.Duration(b.N)
	busyTimes := times.describe()
	bn.mu.Lock()
	bn.single[n] = cycle
	bn.mu.Unlock()

	// Idle: nothing is due. A scheduled run finds the run record current and ends
	// after reading it; a full reconcile (a manual refresh, or the scheduled run once
	// the last full read is an hour old) reads every token. Warm: the handler that
	// just ran (secrets cached). Cold: a new handler, as in a new execution environment.
	idle := func(h *refresher.Handler, calls *localaws.Calls, event json.RawMessage, wantIdle bool) (map[string]int, int, time.Duration) {
		calls.Reset()
		before := bn.srv.TotalRequests()
		start := time.Now()
		res, err := h.Handle(ctx, event)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("idle cycle: %v", err)
		}
		if res.Idle != wantIdle || !wantIdle && res.Counts()[refresher.StatusSkipped] != n {
			b.Fatalf("idle cycle: idle %v, %v", res.Idle, res.Counts())
		}
		return snapshot(calls), bn.srv.TotalRequests() - before, d
	}
	warmCalls, warmProvider, warmTime := idle(h, &calls, scheduleEvent, true)
	var coldCounter localaws.Calls
	cold := bn.handler(b, regFile, prefix, &coldCounter)
	coldCalls, coldProvider, coldTime := idle(cold, &coldCounter, scheduleEvent, true)
	fullCalls, fullProvider, fullTime := idle(cold, &coldCounter, refreshEvent, false)
	amortised := float64(total(fullCalls)+(reconcileEvery-1)*total(coldCalls)) / float64(reconcileEvery)

	ratio := float64(cycle) / float64(bound)
	writeRate := float64(busyCalls[opPut]) / cycle.Seconds()
	fmt.Printf("\nbench: providers=%d latency_ms=%d cycle_ms=%d bound_ms=%d ratio=%.2f idle_aws_calls=%d idle_provider_calls=%d\n",
		n, bn.latency.Milliseconds(), cycle.Milliseconds(), bound.Milliseconds(), ratio, total(coldCalls), coldProvider)
	fmt.Printf("bench: providers=%d bound: max_concurrency=%d latency_ms=%d x %d slots + aws_ms=%d (%d GetParametersByPath x %.1f ms + %d BatchGetSecretValue x %.1f ms + %d PutParameter slots x %.1f ms)\n",
		n, c, bn.latency.Milliseconds(), slots, awsBound.Milliseconds(), ceilDiv(n, 10), ms(lat.getByPath), ceilDiv(n, 20), ms(lat.batchGet), slots, ms(lat.put))
	fmt.Printf("bench: providers=%d busy: %s provider_calls=%d put_per_s=%.1f\n", n, describe(busyCalls), busyProvider, writeRate)
	fmt.Printf("bench: providers=%d busy AWS latency in the cycle: %s\n", n, busyTimes)
	fmt.Printf("bench: providers=%d idle scheduled, cold: %s provider_calls=%d idle_ms=%d\n", n, describe(coldCalls), coldProvider, coldTime.Milliseconds())
	fmt.Printf("bench: providers=%d idle scheduled, warm: %s provider_calls=%d idle_ms=%d\n", n, describe(warmCalls), warmProvider, warmTime.Milliseconds())
	fmt.Printf("bench: providers=%d full reconcile: %s provider_calls=%d full_ms=%d\n", n, describe(fullCalls), fullProvider, fullTime.Milliseconds())
	fmt.Printf("bench: providers=%d amortised idle: %.1f aws_calls per scheduled run (one full reconcile and %d idle runs an hour)\n",
		n, amortised, reconcileEvery-1)
	quotaLines(n, cycle, writeRate, bn.latency, lat.put, c)

	b.ReportMetric(float64(cycle.Milliseconds()), "cycle_ms")
	b.ReportMetric(float64(bound.Milliseconds()), "bound_ms")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(total(coldCalls)), "idle_aws_calls")
	b.ReportMetric(amortised, "amortised_idle_aws_calls")
	b.ReportMetric(writeRate, "busy_put_per_s")
	b.ReportMetric(float64(coldProvider), "idle_provider_calls")
	b.ReportMetric(float64(busyCalls[opBatchGet]), "busy_batchget_calls")
	b.ReportMetric(float64(busyCalls[opPut]), "busy_put_calls")
	b.ReportMetric(float64(busyProvider), "busy_provider_calls")
	b.ReportMetric(0, "ns/op") // the cycle is in cycle_ms; ns/op would include nothing else
}

// BenchmarkFootprint measures the Lambda binary, the peak RSS of one invocation of
// the command at BENCH_FOOTPRINT_PROVIDERS providers, and the time from exec to the
// handler.
func BenchmarkFootprint(b *testing.B) {
	bn := setupBench(b)
	n := awstest.EnvInt(b, "BENCH_FOOTPRINT_PROVIDERS", 1000)
	dir := b.TempDir()

	// The binary exactly as for Lambda (functions/refresher/Makefile), and the same
	// for this machine, to run.
	build := func(out string, env ...string) {
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build %v: %v\n%s", env, err, o)
		}
	}
	lambdaBin, hostBin := filepath.Join(dir, "bootstrap"), filepath.Join(dir, "refresher")
	build(lambdaBin, "GOOS=linux", "GOARCH=arm64")
	build(hostBin)
	st, err := os.Stat(lambdaBin)
	if err != nil {
		b.Fatal(err)
	}

	timeBin, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Fatal("/usr/bin/time is missing: install the Debian package `time` (scripts/bench does)")
	}
	regFile := bn.registry(b, n)
	prefix := bn.populate(b, n, regFile)
	env := append(os.Environ(), "PROVIDERS_FILE="+regFile, "TOKEN_PARAMETER_PREFIX="+prefix, "PUT_PARAMETER_RATE=10000")

	// Init: from exec to the first line the handler logs, for an event it refuses at
	// once ({"action":"rotate"} without providers), so nothing after the init is timed
	// but the event's decoding. The median of 5 runs.
	refused := filepath.Join(dir, "refused.json")
	if err := os.WriteFile(refused, []byte(`{"action":"rotate"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	initTime := func(env []string) time.Duration {
		var ds []time.Duration
		for range 5 {
			cmd := exec.Command(hostBin, "-event", refused)
			cmd.Env = env
			stderr, err := cmd.StderrPipe()
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			first := make([]byte, 1)
			if _, err := io.ReadFull(stderr, first); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			rest, _ := io.ReadAll(stderr)
			_ = cmd.Wait()
			if !strings.Contains(string(first)+string(rest), "event refused") {
				b.Fatalf("expected the handler to refuse the event, got: %s%s", first, rest)
			}
		}
		return median(ds)
	}
	initN := initTime(env)
	// The five seeds of providers.example.yaml, given as a file: the embedded
	// providers.yaml is empty, and a build without a registry refuses nothing but
	// reports itself unconfigured.
	initFive := initTime(append(os.Environ(), "PROVIDERS_FILE=providers.example.yaml"))

	// Peak RSS: one invocation rotating all n providers, as a user runs it, with the
	// fake providers answering after L from this process.
	bn.srv.SetLatency(bn.latency)
	defer bn.srv.SetLatency(0)
	before := bn.srv.TotalRequests()
	// Lambda's longest timeout: at 10,000 providers and L = 200 ms the run takes
	// longer than the command's default 5 minutes.
	cmd := exec.Command(timeBin, "-v", hostBin, "-event", filepath.Join("..", "..", "events", "rotate-all.json"), "-timeout", "15m")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	b.ResetTimer()
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	b.StopTimer()
	if runErr != nil {
		b.Fatalf("refresher -event rotate-all.json: %v\n%s", runErr, tail(stderr.String(), 2000))
	}
	var res refresher.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Counts()[refresher.StatusRefreshed] != n {
		b.Fatalf("result %v (%v)", res.Counts(), err)
	}
	if got := bn.srv.TotalRequests() - before; got != n {
		b.Fatalf("%d provider calls, want %d", got, n)
	}
	m := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		b.Fatalf("no peak RSS in the output of /usr/bin/time -v:\n%s", tail(stderr.String(), 2000))
	}
	rss, _ := strconv.Atoi(m[1])

	fmt.Printf("\nbench: binary_bytes=%d peak_rss_kb=%d init_ms=%.1f providers=%d run_ms=%d init_ms_5_providers=%.1f\n",
		st.Size(), rss, ms(initN), n, wall.Milliseconds(), ms(initFive))
	breakdown(b, dir)
	b.ReportMetric(float64(st.Size()), "binary_bytes")
	b.ReportMetric(float64(rss), "peak_rss_kb")
	b.ReportMetric(ms(initN), "init_ms")
	b.ReportMetric(0, "ns/op")
}

// opTimes records how long each AWS call of a cycle took, from the SDK's first
// middleware to its answer (retries included), by "Service.Operation".
type opTimes struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (o *opTimes) middleware(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.opTimes",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			key := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			o.mu.Lock()
			if o.d == nil {
				o.d = map[string][]time.Duration{}
			}
			o.d[key] = append(o.d[key], time.Since(start))
			o.mu.Unlock()
			return out, md, err
		}), middleware.Before)
}

func (o *opTimes) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.d = nil
}

// describe gives the median and the sum of each operation's calls.
func (o *opTimes) describe() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for _, op := range []string{opGetByPath, opGetMany, opBatchGet, opPut} {
		if ds := o.d[op]; len(ds) > 0 {
			var sum time.Duration
			for _, d := range ds {
				sum += d
			}
			parts = append(parts, fmt.Sprintf("%s median_ms=%.1f sum_ms=%d", strings.NewReplacer("SSM.", "", "Secrets Manager.", "").Replace(op), ms(median(ds)), sum.Milliseconds()))
		}
	}
	return strings.Join(parts, ", ")
}

func snapshot(c *localaws.Calls) map[string]int {
	m := map[string]int{}
	for _, op := range []string{opGetByPath, opPut, opBatchGet, opGet, opGetOne, opGetMany} {
		m[op] = c.Count(op)
	}
	m["other"] = c.Total() - m[opGetByPath] - m[opPut] - m[opBatchGet] - m[opGet] - m[opGetOne] - m[opGetMany]
	return m
}

// quotaLines print what a busy cycle's writes mean against SSM's PutParameter
// quota Q, for tokens of 1 h under the default policy (refreshed on average 44.5
// minutes after issue, docs/performance.md, so N × 5 / 44.5 are due in each
// 5-minute run and N / (44.5 × 60) writes a second are needed):
//
//   - one invocation writes at R = min(Q, the rate this cycle measured), and keeps
//     up while a run writes its due tokens within min(timeout, 300 s) (past the
//     5-minute period a run only delays the next): N ≤ R × min(T, 300) × 60 × 44.5 / 300;
//   - fanned out, workers write at Q whatever one invocation's rate, so N ≤ Q × 44.5 × 60,
//     with k ≥ Q × (L + t(PutParameter)) / min(B, C) workers (at least 2).
func quotaLines(n int, cycle time.Duration, writeRate float64, latency, put time.Duration, concurrency int) {
	const interval = 44.5 * 60 // seconds between refreshes of a 1 h token
	for _, q := range []float64{3, 10, 40, 100} {
		r := math.Min(q, writeRate)
		fanout := q * interval
		k := max(2, int(math.Ceil(q*(latency+put).Seconds()/float64(min(jobBatch, concurrency)))))
		for _, timeout := range []float64{120, 900} {
			single := math.Min(r*math.Min(timeout, 300)*interval/300, fanout)
			fmt.Printf("bench: providers=%d quota put_tps=%g timeout_s=%g busy_cycle_at_quota_s=%.0f single_largest_n=%.0f fanout_largest_n=%.0f fanout_workers=%d (one invocation writes %.1f/s)\n",
				n, q, timeout, math.Max(cycle.Seconds(), float64(n)/q), single, fanout, k, r)
		}
	}
}

func total(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func describe(m map[string]int) string {
	return fmt.Sprintf("aws_calls=%d ssm_get_parameters_by_path=%d ssm_get_parameter=%d ssm_get_parameters=%d ssm_put_parameter=%d sm_batch_get_secret_value=%d sm_get_secret_value=%d other_aws=%d",
		total(m), m[opGetByPath], m[opGetOne], m[opGetMany], m[opPut], m[opBatchGet], m[opGet], m["other"])
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// breakdown prints where the Lambda binary's bytes go, by module (the standard
// library as one, the project's packages each): the sizes of the code and data
// symbols of the same build with its symbol table kept, as go tool nm reports them.
func breakdown(b *testing.B, dir string) {
	bin := filepath.Join(dir, "bootstrap-symbols")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		b.Fatal(err)
	}
	sizes := map[string]int{}
	total := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] == "B" || f[2] == "b" { // bss takes no room in the file
			continue
		}
		size, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		sizes[module(strings.Join(f[3:], " "))] += size
		total += size
	}
	keys := slices.SortedFunc(maps.Keys(sizes), func(a, b string) int { return sizes[b] - sizes[a] })
	var parts []string
	for _, k := range keys[:min(len(keys), 14)] {
		parts = append(parts, fmt.Sprintf("%s=%d", k, sizes[k]))
	}
	fmt.Printf("bench: binary symbols_bytes=%d by module: %s\n", total, strings.Join(parts, " "))
}

// module names what a symbol belongs to: the project's package, a dependency's
// module (github.com/aws/aws-sdk-go-v2/service/ssm...), or "stdlib".
func module(symbol string) string {
	symbol = strings.TrimPrefix(strings.TrimPrefix(symbol, "type:"), "go:")
	symbol = strings.TrimLeft(symbol, "*.")
	slash := strings.LastIndex(symbol, "/")
	path := symbol
	if i := strings.Index(symbol[slash+1:], "."); i >= 0 {
		path = symbol[:slash+1+i]
	}
	switch {
	case strings.HasPrefix(path, "github.com/token-refresher/token-refresher/"):
		return strings.TrimPrefix(path, "github.com/token-refresher/token-refresher/")
	case strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2/service/"):
		return "aws-sdk:" + strings.SplitN(strings.TrimPrefix(path, "github.com/aws/aws-sdk-go-v2/service/"), "/", 2)[0]
	case strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2"), strings.HasPrefix(path, "github.com/aws/smithy-go"):
		return "aws-sdk:core"
	case strings.Contains(path, "."):
		parts := strings.Split(path, "/")
		return strings.Join(parts[:min(len(parts), 3)], "/")
	default:
		return "stdlib"
	}
}
