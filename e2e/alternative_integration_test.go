//go:build integration

package e2e

// BenchmarkAlternative measures the product against what consumers do without it:
// every consumer Lambda fetching its own token with golang.org/x/oauth2's
// clientcredentials on every cold start. Both sides run in one benchmark, against
// the same fake token endpoint (internal/oauthtest, answering after a latency L) and
// the same LocalStack. It is part of `make bench` (scripts/bench); the method and the
// figures are in docs/performance.md, "The product against its alternative".
//
//   - cold_start: a cold consumer's time to its first authorized request, median
//     and p99 over BENCH_COLD_STARTS trials of each kind, interleaved: pkg/tokens
//     reading the token the refresher published to SSM, against clientcredentials
//     asking the token endpoint. Each trial builds everything anew (AWS
//     configuration and SSM client, or clientcredentials.Config; an http.Transport
//     with no pooled connection) and calls the partner's API once, which must
//     answer 200.
//   - refresher: the refresher as main wires it (internal/oauth, internal/secrets
//     with the secret in LocalStack's Secrets Manager, internal/store,
//     internal/state), run on its 5-minute schedule over BENCH_SIM_HOURS simulated
//     hours on an injected clock; the fake endpoint counts its token requests.
//   - consumers=K: the K × 4 cold starts of an hour of K consumers that cold-start
//     every 15 minutes on average, each a clientcredentials fetch, at most
//     BENCH_FLEET_CONCURRENCY at once; the fake endpoint counts the requests, set
//     against the refresher's per hour.
//
// Settings: BENCH_LATENCY_MS (default 200), BENCH_COLD_STARTS (50), BENCH_CONSUMERS
// ("10,100,1000"), BENCH_FLEET_CONCURRENCY (64), BENCH_SIM_HOURS (24). Every figure is
// printed as a "bench: alternative ..." line and reported with b.ReportMetric.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// The fake providers, all of the standard dialect clientcredentials speaks
// (oauthtest.Cardlytics: form body with the credentials in it, flat JSON answer,
// 1 h tokens). The partner API of each accepts only the token its provider issued
// last, so the consumers of each side have a provider of their own.
const (
	altPublished = "published" // the refresher publishes its token; pkg/tokens consumers call its API
	altDirect    = "direct"    // clientcredentials consumers fetch from it and call its API
	altFleet     = "fleet"     // an hour of a fleet's cold fetches, then the refresher on its schedule
)

// altSchedule is the refresher's schedule period, the template's and the policy's default.
const altSchedule = refresher.DefaultPeriod

// altColdStartsPerHour: a consumer that cold-starts every 15 minutes on average.
const altColdStartsPerHour = 4

type alternative struct {
	ctx     context.Context
	cfg     aws.Config
	srv     *oauthtest.Server
	latency time.Duration
	root    string            // SSM path under which everything of this run is written
	secrets map[string]string // provider → secret name in LocalStack
	creds   map[string]oauth.Credentials

	simOnce sync.Once
	sim     simResult
}

func BenchmarkAlternative(b *testing.B) {
	a := &alternative{
		ctx:     context.Background(),
		cfg:     awstest.Config(b),
		srv:     oauthtest.NewServer(),
		latency: time.Duration(awstest.EnvInt(b, "BENCH_LATENCY_MS", 200)) * time.Millisecond,
		secrets: map[string]string{},
		creds:   map[string]oauth.Credentials{},
	}
	b.Cleanup(a.srv.Close)
	a.root = awstest.Parameters(b, a.cfg, "token-refresher-alt-bench-")
	secretPrefix := awstest.Secrets(b, a.cfg, "token-refresher-alt-bench-")
	sm := secretsmanager.NewFromConfig(a.cfg)
	for _, name := range []string{altPublished, altDirect, altFleet} {
		c := oauth.Credentials{ClientID: "alt-id-" + name, ClientSecret: "alt-secret-" + name}
		a.srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: c.ClientID, ClientSecret: c.ClientSecret})
		a.creds[name] = c
		a.secrets[name] = secretPrefix + name
		awstest.PutSecret(b, sm, a.secrets[name], c.ClientID, c.ClientSecret)
	}
	a.srv.SetLatency(a.latency)

	b.Run("cold_start", a.coldStart)
	for _, k := range altConsumers(b) {
		b.Run(fmt.Sprintf("consumers=%d", k), func(b *testing.B) { a.consumers(b, k) })
	}
}

// refresher returns the refresher as main wires it, for the named providers, its
// tokens and state under a path of its own, its AWS calls counted by calls, on the
// clock now (time.Now when nil), which the refresher hands to the token client and
// the secrets cache.
func (a *alternative) refresher(b *testing.B, dir string, calls *localaws.Calls, now func() time.Time, names ...string) (*refresher.Refresher, *registry.Registry) {
	b.Helper()
	var doc strings.Builder
	doc.WriteString("providers:\n")
	for _, name := range names {
		doc.WriteString(registry.EntryYAML(name, a.secrets[name], oauthtest.Cardlytics.Endpoint(a.srv.URL()+"/"+name+"/token")))
	}
	reg, err := registry.Load(strings.NewReader(doc.String()), registry.Options{ParameterPrefix: a.root + "/" + dir + "/tokens"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := awstest.CountedIn(a.cfg, calls)
	sc := ssm.NewFromConfig(cfg)
	return &refresher.Refresher{
		Providers: reg,
		Secrets:   &secrets.Source{API: secretsmanager.NewFromConfig(cfg)},
		Store:     &store.Store{API: sc, Prefix: reg.ParameterPrefix()},
		State:     &state.Store{API: sc, Prefix: a.root + "/" + dir + "/state"},
		Client:    &oauth.Client{UserAgent: "token-refresher"},
		Now:       now,
	}, reg
}

// scheduleRequest is the request of an EventBridge schedule event.
var scheduleRequest = refresher.Request{Action: refresher.ActionRefresh, Trigger: refresher.TriggerSchedule}

// coldStart times cold consumers of both kinds to their first authorized request.
func (a *alternative) coldStart(b *testing.B) {
	n := awstest.EnvInt(b, "BENCH_COLD_STARTS", 50)
	if n < 1 {
		b.Fatal("BENCH_COLD_STARTS must be at least 1")
	}
	// The refresher publishes the token of "published" as a scheduled run does.
	r, reg := a.refresher(b, "now", &localaws.Calls{}, nil, altPublished)
	res, err := r.Run(a.ctx, scheduleRequest)
	if err != nil || res.Counts()[refresher.StatusRefreshed] != 1 {
		b.Fatalf("publishing the token: %v %v", res.Counts(), err)
	}
	p, _ := reg.Lookup(altPublished)
	parameter := p.Parameter

	var calls localaws.Calls // the pkg/tokens consumers' AWS calls

	// One untimed trial of each first: one-time costs of this process (lazy package
	// state in the SDK and net/http) are no part of a trial.
	if _, err := a.tokensTrial(parameter, &calls); err != nil {
		b.Fatalf("pkg/tokens warm-up: %v", err)
	}
	if _, err := a.oauth2Trial(); err != nil {
		b.Fatalf("clientcredentials warm-up: %v", err)
	}
	calls.Reset()
	publishedBefore, directBefore := a.srv.Stats(altPublished), a.srv.Stats(altDirect)

	var tok []tokensTiming
	var o2 []time.Duration
	b.ResetTimer()
	for i := range n {
		// Interleaved, alternating which goes first, so drift in LocalStack's or the
		// machine's load falls on both alike.
		trials := []func() error{
			func() error { d, err := a.tokensTrial(parameter, &calls); tok = append(tok, d); return err },
			func() error { d, err := a.oauth2Trial(); o2 = append(o2, d); return err },
		}
		if i%2 == 1 {
			slices.Reverse(trials)
		}
		for _, t := range trials {
			if err := t(); err != nil {
				b.Fatalf("trial %d: %v", i, err)
			}
		}
	}
	b.StopTimer()

	// Every trial was authorized, and each side did exactly what it claims to.
	pub, dir := a.srv.Stats(altPublished), a.srv.Stats(altDirect)
	if got := pub.APIAccepted - publishedBefore.APIAccepted; got != n {
		b.Fatalf("the partner accepted %d of %d pkg/tokens trials", got, n)
	}
	if got := dir.APIAccepted - directBefore.APIAccepted; got != n {
		b.Fatalf("the partner accepted %d of %d clientcredentials trials", got, n)
	}
	if got := pub.Requests - publishedBefore.Requests; got != 0 {
		b.Fatalf("pkg/tokens consumers made %d token requests, want none", got)
	}
	if got := dir.Requests - directBefore.Requests; got != n {
		b.Fatalf("clientcredentials consumers made %d token requests, want %d", got, n)
	}
	if got := calls.Count("SSM.GetParameter"); got != n || calls.Total() != n {
		b.Fatalf("pkg/tokens consumers made %d AWS calls (%d GetParameter), want %d GetParameter and nothing else", calls.Total(), got, n)
	}

	var total, cfgLoad, getParam []time.Duration
	for _, t := range tok {
		total, cfgLoad, getParam = append(total, t.total), append(cfgLoad, t.config), append(getParam, t.getParameter)
	}
	tMed, tP99, oMed, oP99 := altMedian(total), altPercentile(total, 0.99), altMedian(o2), altPercentile(o2, 0.99)
	ratio, ratioP99 := float64(oMed)/float64(tMed), float64(oP99)/float64(tP99)
	fmt.Printf("\nbench: alternative cold_starts=%d latency_ms=%d tokens_median_ms=%.1f tokens_p99_ms=%.1f oauth2_median_ms=%.1f oauth2_p99_ms=%.1f ratio=%.1f p99_ratio=%.1f\n",
		n, a.latency.Milliseconds(), altMs(tMed), altMs(tP99), altMs(oMed), altMs(oP99), ratio, ratioP99)
	fmt.Printf("bench: alternative cold_starts=%d per cold start: tokens ssm_get_parameter=%d token_requests=%d, oauth2 token_requests=%d; tokens min/max_ms=%.1f/%.1f oauth2 min/max_ms=%.1f/%.1f\n",
		n, calls.Count("SSM.GetParameter")/n, (pub.Requests-publishedBefore.Requests)/n, (dir.Requests-directBefore.Requests)/n,
		altMs(slices.Min(total)), altMs(slices.Max(total)), altMs(slices.Min(o2)), altMs(slices.Max(o2)))
	fmt.Printf("bench: alternative cold_starts=%d tokens medians: load_aws_config_ms=%.1f get_parameter_ms=%.1f\n",
		n, altMs(altMedian(cfgLoad)), altMs(altMedian(getParam)))
	b.ReportMetric(altMs(tMed), "tokens_median_ms")
	b.ReportMetric(altMs(tP99), "tokens_p99_ms")
	b.ReportMetric(altMs(oMed), "oauth2_median_ms")
	b.ReportMetric(altMs(oP99), "oauth2_p99_ms")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(0, "ns/op")
}

// newTransport is a transport of its own for one cold consumer, so that it has no
// pooled connection; http.DefaultTransport's settings.
func newTransport() *http.Transport { return http.DefaultTransport.(*http.Transport).Clone() }

// tokensTiming is one pkg/tokens trial: its total, and of it the AWS configuration's
// load and the GetParameter call (from the SDK's first middleware to its answer).
type tokensTiming struct{ total, config, getParameter time.Duration }

// tokensTrial is a cold pkg/tokens consumer: it loads its AWS configuration, makes
// its SSM client, Source and HTTP client, and calls the partner's API once. The SDK
// gets a new HTTP client of its own, built as the SDK builds its default one (the
// environment's AWS_CA_BUNDLE is applied to it), and the partner's API a new transport.
func (a *alternative) tokensTrial(parameter string, calls *localaws.Calls) (tokensTiming, error) {
	var sdkTransport *http.Transport
	defer func() {
		if sdkTransport != nil {
			sdkTransport.CloseIdleConnections()
		}
	}()
	sdkClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { sdkTransport = t })
	tr := newTransport()
	defer tr.CloseIdleConnections()
	var tm tokensTiming
	timed := func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.timed",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				t := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				tm.getParameter += time.Since(t)
				return out, md, err
			}), middleware.Before)
	}
	start := time.Now()
	cfg, err := config.LoadDefaultConfig(a.ctx, config.WithRegion(a.cfg.Region), config.WithHTTPClient(sdkClient),
		config.WithAPIOptions([]func(*middleware.Stack) error{calls.Middleware, timed}))
	if err != nil {
		return tm, err
	}
	tm.config = time.Since(start)
	src := tokens.NewSource(ssm.NewFromConfig(cfg), parameter)
	client := tokens.NewClient(context.WithValue(a.ctx, oauth2.HTTPClient, &http.Client{Transport: tr}), src)
	err = a.callAPI(client, altPublished)
	tm.total = time.Since(start)
	return tm, err
}

// oauth2Trial is a cold clientcredentials consumer: it makes its config and HTTP
// client, which fetches a token from the endpoint, and calls the partner's API once.
func (a *alternative) oauth2Trial() (time.Duration, error) {
	tr := newTransport()
	defer tr.CloseIdleConnections()
	start := time.Now()
	client := a.clientCredentials(altDirect).Client(context.WithValue(a.ctx, oauth2.HTTPClient, &http.Client{Transport: tr}))
	err := a.callAPI(client, altDirect)
	return time.Since(start), err
}

// clientCredentials is what a consumer configures without the product: its own
// client secret and the provider's token endpoint.
func (a *alternative) clientCredentials(name string) *clientcredentials.Config {
	c := a.creds[name]
	return &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		TokenURL: a.srv.URL() + "/" + name + "/token", AuthStyle: oauth2.AuthStyleInParams}
}

// callAPI makes one request to the provider's partner API and wants its 200.
func (a *alternative) callAPI(client *http.Client, name string) error {
	req, err := http.NewRequestWithContext(a.ctx, http.MethodGet, a.srv.APIURL(name)+"/v1/accounts", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("partner API %s: %s %s", name, resp.Status, body)
	}
	return nil
}

// consumers measures the token requests of an hour of k clientcredentials
// consumers, and sets them against the refresher's.
func (a *alternative) consumers(b *testing.B, k int) {
	sim := a.simulate(b)
	fetches := k * altColdStartsPerHour
	limit := awstest.EnvInt(b, "BENCH_FLEET_CONCURRENCY", 64)
	before := a.srv.Stats(altFleet).Requests
	b.ResetTimer()
	start := time.Now()
	g, ctx := errgroup.WithContext(a.ctx)
	g.SetLimit(max(1, limit))
	for range fetches {
		g.Go(func() error {
			tr := newTransport()
			defer tr.CloseIdleConnections()
			tok, err := a.clientCredentials(altFleet).Token(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: tr}))
			if err == nil && !tok.Valid() {
				err = fmt.Errorf("invalid token %v", tok.Expiry)
			}
			return err
		})
	}
	err := g.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("clientcredentials fetch: %v", err)
	}
	requests := a.srv.Stats(altFleet).Requests - before
	if requests != fetches {
		b.Fatalf("%d cold fetches made %d token requests", fetches, requests)
	}
	perHour := float64(requests) // the fetches are one hour's cold starts
	ratio := perHour / sim.perHour
	fmt.Printf("\nbench: alternative consumers=%d oauth2_token_requests_per_hour=%d refresher_token_requests_per_hour=%.2f ratio=%.0f (oauth2: %d cold fetches, %d at a time, in %d ms)\n",
		k, requests, sim.perHour, ratio, fetches, limit, elapsed.Milliseconds())
	b.ReportMetric(perHour, "oauth2_token_requests/h")
	b.ReportMetric(sim.perHour, "refresher_token_requests/h")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(0, "ns/op")
}

type simResult struct{ perHour float64 }

// simulate runs the refresher for altFleet on its schedule over BENCH_SIM_HOURS
// simulated hours, once, and returns its token requests per hour.
func (a *alternative) simulate(b *testing.B) simResult {
	a.simOnce.Do(func() {
		hours := awstest.EnvInt(b, "BENCH_SIM_HOURS", 24)
		if hours < 1 {
			b.Fatal("BENCH_SIM_HOURS must be at least 1")
		}
		// A fixed start, so the policy's jitter (a function of the provider and the
		// issue time) and with it every figure is the same from run to run.
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		now := start
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		a.srv.SetClock(clock)
		defer a.srv.SetClock(nil)

		var calls localaws.Calls
		r, _ := a.refresher(b, "sim", &calls, clock, altFleet)
		before := a.srv.Stats(altFleet).Requests
		runs := hours * int(time.Hour/altSchedule)
		var refreshedAt []time.Time
		idle := 0
		t0 := time.Now()
		for i := range runs {
			mu.Lock()
			now = start.Add(time.Duration(i) * altSchedule)
			mu.Unlock()
			res, err := r.Run(a.ctx, scheduleRequest)
			if err != nil {
				b.Fatalf("scheduled run at +%s: %v", time.Duration(i)*altSchedule, err)
			}
			if res.Idle {
				idle++
			}
			if res.Counts()[refresher.StatusRefreshed] == 1 {
				refreshedAt = append(refreshedAt, clock())
			}
		}
		wall := time.Since(t0)
		requests := a.srv.Stats(altFleet).Requests - before
		if requests != len(refreshedAt) {
			b.Fatalf("%d token requests for %d refreshes", requests, len(refreshedAt))
		}
		var interval time.Duration
		if len(refreshedAt) > 1 {
			interval = refreshedAt[len(refreshedAt)-1].Sub(refreshedAt[0]) / time.Duration(len(refreshedAt)-1)
		}
		a.sim.perHour = float64(requests) / float64(hours)
		fmt.Printf("\nbench: alternative refresher simulated_hours=%d schedule_runs=%d idle_runs=%d token_requests=%d refresher_token_requests_per_hour=%.2f mean_refresh_interval_min=%.1f aws_calls_per_hour=%.1f (%s) wall_ms=%d\n",
			hours, runs, idle, requests, a.sim.perHour, interval.Minutes(), float64(calls.Total())/float64(hours), altDescribe(&calls), wall.Milliseconds())
	})
	if a.sim.perHour == 0 {
		b.Fatal("the refresher simulation failed earlier")
	}
	return a.sim
}

// altDescribe lists the calls by operation.
func altDescribe(c *localaws.Calls) string {
	var parts []string
	for _, op := range []string{"SSM.GetParameter", "SSM.GetParameters", "SSM.GetParametersByPath", "SSM.PutParameter",
		"SSM.GetParameterHistory", "Secrets Manager.BatchGetSecretValue", "Secrets Manager.GetSecretValue"} {
		if n := c.Count(op); n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", strings.NewReplacer("SSM.", "", "Secrets Manager.", "").Replace(op), n))
		}
	}
	return strings.Join(parts, " ")
}

func altConsumers(b *testing.B) []int {
	v := os.Getenv("BENCH_CONSUMERS")
	if v == "" {
		v = "10,100,1000"
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 || k > 100000 {
			b.Fatalf("BENCH_CONSUMERS=%q: want a comma-separated list of numbers from 1 to 100000", v)
		}
		out = append(out, k)
	}
	return out
}

// altMedian is the upper median, as the cycle benchmark takes it.
func altMedian(ds []time.Duration) time.Duration { return altSorted(ds)[len(ds)/2] }

// altPercentile is the nearest-rank percentile: with 50 samples, p99 is the largest.
func altPercentile(ds []time.Duration, p float64) time.Duration {
	return altSorted(ds)[int(math.Ceil(p*float64(len(ds))))-1]
}

func altSorted(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

func altMs(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
