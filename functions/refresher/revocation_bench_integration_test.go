//go:build integration

package main

// BenchmarkRevocation times a fleet's recovery from a partner-side revocation: K
// consumers, each a tokens.Source and Transport of its own with its own SSM client
// and connection pool (K Lambda execution environments' worth of state), wired
// with tokens.WithRotation as examples/consumer-go wires it, call a fake partner
// API on loopback that accepts only the token issued last. Once every consumer
// holds the published token, the partner revokes it and all K send a request at
// once: each is refused (401), reads the parameter again, finds the refused token,
// sends a conditional rotation and polls for the successor. The rotations go to
// the real handler, wired as main wires it against LocalStack, invoked
// asynchronously in-process: each Rotate returns once the event is queued, and the
// events are worked off by at most BENCH_REFRESHER_CONCURRENCY execution
// environments at once (1, the template's ReservedConcurrency; 0 for no limit),
// each built as a cold start when none is free. It reports, per K, the median and
// p99 of each consumer's time from its 401 to its retry's 200, the times from the
// revocation to the return of the invocation that rotated (after its writes) and
// to the last consumer's 200, and what that took: the token requests the
// fake token endpoint saw (the benchmark fails unless it is 1), the rotations the
// consumers sent, the invocations that rotated and that skipped, and the consumers'
// GetParameter calls; a consumer still refused when its rotation wait ended is
// counted, not timed.
//
// Settings: BENCH_LATENCY_MS (the token endpoint's latency, default 200),
// BENCH_REVOCATION_CONSUMERS (default "10,100"), BENCH_REFRESHER_CONCURRENCY (1).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// lambdaTimeout is the invocation timeout the environments run with: the
// template's FunctionTimeout default.
const lambdaTimeout = 120 * time.Second

func BenchmarkRevocation(b *testing.B) {
	cfg := awstest.Config(b)
	ctx := context.Background()
	latency := time.Duration(awstest.EnvInt(b, "BENCH_LATENCY_MS", 200)) * time.Millisecond
	concurrency := awstest.EnvInt(b, "BENCH_REFRESHER_CONCURRENCY", 1)
	srv := oauthtest.NewServer()
	b.Cleanup(srv.Close)
	srv.SetLatency(latency)
	bucket := awstest.UniqueName("leases-")
	s3c := catalog.NewClient(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { emptyBucket(b, s3c, bucket) })

	for _, k := range revocationSizes(b) {
		b.Run(fmt.Sprintf("consumers=%d", k), func(b *testing.B) {
			// A provider of its own per K, so that one K's rotation does not
			// count against the next one's MIN_FORCED_ROTATION_INTERVAL.
			name := fmt.Sprintf("partner-k%d", k)
			base := awstest.Secrets(b, cfg, "revocation-bench-")
			prefix := awstest.Parameters(b, cfg, "revocation-bench-") + "/tokens"
			tokenURL := srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.ECard, ClientID: "id-" + name, ClientSecret: "secret-" + name})
			awstest.PutSecret(b, secretsmanager.NewFromConfig(cfg), base+name, "id-"+name, "secret-"+name)
			regFile := filepath.Join(b.TempDir(), "providers.yaml")
			reg := "providers:\n" + registry.EntryYAML(name, base+name, oauthtest.ECard.Endpoint(tokenURL))
			if err := os.WriteFile(regFile, []byte(reg), 0o600); err != nil {
				b.Fatal(err)
			}
			vars := map[string]string{
				"PROVIDERS_FILE":         regFile,
				"TOKEN_PARAMETER_PREFIX": prefix,
				"STATE_PARAMETER_PREFIX": strings.TrimSuffix(prefix, "/tokens") + "/state",
				"REGISTRY_BUCKET":        bucket, // the leases; the registry is the file
			}
			e, err := loadEnv(func(k string) string { return vars[k] }, nil)
			if err != nil {
				b.Fatal(err)
			}
			var fnCalls localaws.Calls
			fn := &lambdaPool{limit: concurrency, build: func() *refresher.Handler {
				return newHandler(ownConnections(awstest.CountedIn(cfg, &fnCalls)), e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
			}}
			if res, err := fn.invoke(ctx, []byte(fmt.Sprintf(`{"action":"rotate","providers":[%q]}`, name))); err != nil {
				b.Fatalf("first token: %v (%+v)", err, res)
			}

			// The consumers' rotations: asynchronous invocations of the function.
			var rotations atomic.Int64
			var invocations sync.WaitGroup
			var outMu sync.Mutex
			outcomes := map[refresher.Status]int{}
			var rotatedAt time.Time // when the invocation that rotated returned
			rotate := tokens.RotatorFunc(func(_ context.Context, r tokens.Rotation) error {
				payload, err := json.Marshal(r)
				if err != nil {
					return err
				}
				rotations.Add(1)
				invocations.Add(1)
				go func() {
					defer invocations.Done()
					res, _ := fn.invoke(context.Background(), payload)
					returned := time.Now()
					outMu.Lock()
					defer outMu.Unlock()
					for _, o := range res.Results {
						outcomes[o.Status]++
						if o.Status == refresher.StatusRefreshed {
							rotatedAt = returned
						}
					}
				}()
				return nil
			})
			var consumerCalls localaws.Calls
			consumerCfg := awstest.CountedIn(cfg, &consumerCalls)
			fleet := make([]*consumer, k)
			for i := range fleet {
				c := &consumer{refusals: &refusalClock{base: &http.Transport{}}}
				src := tokens.NewSource(ssm.NewFromConfig(ownConnections(consumerCfg)), prefix+"/"+name, tokens.WithRotation(rotate))
				c.client = &http.Client{Transport: &tokens.Transport{Source: src, Base: c.refusals}}
				fleet[i] = c
			}
			api := srv.APIURL(name) + "/v1/reports"
			// Every consumer warm, its Source holding the published token.
			for i, c := range fleet {
				if status, err := c.get(ctx, api); err != nil || status != http.StatusOK {
					b.Fatalf("consumer %d before the revocation: got %d (%v), want 200", i, status, err)
				}
			}

			var recovery, fleetRecovery, rotated []time.Duration
			var tokenRequests, sent, getParameter, cold, unrecovered int
			b.ResetTimer()
			for range b.N {
				for _, c := range fleet {
					c.refusals.reset()
				}
				consumerCalls.Reset()
				rotations.Store(0)
				before := srv.Stats(name).Requests
				coldBefore := fn.coldStarts()

				srv.Revoke(name)
				revoked := time.Now()
				done := make([]time.Time, k)
				status := make([]int, k)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i, c := range fleet {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						status[i], _ = c.get(ctx, api)
						done[i] = time.Now()
					}()
				}
				close(start)
				wg.Wait()
				invocations.Wait()

				last := time.Duration(0)
				for i, c := range fleet {
					refused := c.refusals.first()
					if refused.IsZero() {
						b.Fatalf("consumer %d after the revocation: got %d without a 401 first; want the partner's refusal", i, status[i])
					}
					if status[i] != http.StatusOK {
						unrecovered++ // its wait for the successor ended first
						continue
					}
					recovery = append(recovery, done[i].Sub(refused))
					last = max(last, done[i].Sub(revoked))
				}
				fleetRecovery = append(fleetRecovery, last)
				outMu.Lock()
				rotated = append(rotated, rotatedAt.Sub(revoked))
				outMu.Unlock()
				tokenRequests = srv.Stats(name).Requests - before
				if tokenRequests != 1 {
					b.Fatalf("%d consumers refused with one token (%d still refused after the rotation wait) made %d token requests, want 1", k, unrecovered, tokenRequests)
				}
				sent, getParameter, cold = int(rotations.Load()), consumerCalls.Count(opGetOne), fn.coldStarts()-coldBefore
			}
			b.StopTimer()
			if len(recovery) == 0 {
				b.Fatalf("none of %d consumers recovered within the rotation wait", k)
			}
			med, p99 := quantile(recovery, 0.5), quantile(recovery, 0.99)
			outMu.Lock()
			refreshed, skipped := outcomes[refresher.StatusRefreshed], outcomes[refresher.StatusSkipped]
			outMu.Unlock()
			fmt.Printf("\nbench: revocation consumers=%d L=%dms refresher_concurrency=%d: refusal_to_success median_ms=%.1f p99_ms=%.1f max_ms=%.1f revocation_to_rotation_returned_ms=%.1f revocation_to_last_success_ms=%.1f still_refused=%d token_requests=%d rotations_sent=%d invocations_refreshed=%d skipped=%d cold_starts=%d consumer_get_parameter=%d (%.2f a consumer)\n",
				k, latency.Milliseconds(), concurrency, ms(med), ms(p99), ms(slices.Max(recovery)), ms(quantile(rotated, 0.5)), ms(quantile(fleetRecovery, 0.5)),
				unrecovered, tokenRequests, sent, refreshed, skipped, cold, getParameter, float64(getParameter)/float64(k))
			b.ReportMetric(ms(med), "refusal_to_success_median_ms")
			b.ReportMetric(ms(p99), "refusal_to_success_p99_ms")
			b.ReportMetric(float64(unrecovered), "still_refused")
			b.ReportMetric(float64(tokenRequests), "token_requests")
			b.ReportMetric(float64(sent), "rotations")
			b.ReportMetric(float64(getParameter), "get_parameter")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// consumer is one consumer's state, as one Lambda execution environment holds it.
type consumer struct {
	client   *http.Client
	refusals *refusalClock
}

// get sends one request to the partner API through the consumer's Transport.
func (c *consumer) get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// refusalClock is a consumer's connection to the partner, below tokens.Transport:
// it notes when the partner's first 401 came back, where the recovery starts.
type refusalClock struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   time.Time
}

// RoundTrip implements http.RoundTripper.
func (r *refusalClock) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		now := time.Now()
		r.mu.Lock()
		if r.at.IsZero() {
			r.at = now
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *refusalClock) first() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

func (r *refusalClock) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = time.Time{}
}

// lambdaPool stands for the function's execution environments: an invocation
// runs in a free one, or in a new one (a cold start) while fewer than limit
// exist, else waits for one to be free, as an asynchronous invocation waits in
// Lambda's queue under reserved concurrency. limit 0 means no limit.
type lambdaPool struct {
	limit int
	build func() *refresher.Handler

	mu   sync.Mutex
	cond *sync.Cond
	idle []*refresher.Handler
	made int
}

func (p *lambdaPool) invoke(ctx context.Context, event []byte) (refresher.Result, error) {
	h := p.take()
	defer p.give(h)
	ctx, cancel := context.WithTimeout(ctx, lambdaTimeout)
	defer cancel()
	return h.Handle(ctx, event)
}

func (p *lambdaPool) take() *refresher.Handler {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	for len(p.idle) == 0 && p.limit > 0 && p.made >= p.limit {
		p.cond.Wait()
	}
	if n := len(p.idle); n > 0 {
		h := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return h
	}
	p.made++
	return p.build()
}

func (p *lambdaPool) give(h *refresher.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, h)
	p.cond.Signal()
}

func (p *lambdaPool) coldStarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made
}

// ownConnections is cfg with an HTTP client of its own, so that its clients
// share no connection pool with another process's.
func ownConnections(cfg aws.Config) aws.Config {
	c := cfg.Copy()
	c.HTTPClient = awshttp.NewBuildableClient()
	return c
}

// quantile returns the q-quantile of ds by the nearest-rank method.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func revocationSizes(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(envStr("BENCH_REVOCATION_CONSUMERS", "10,100"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			b.Fatalf("BENCH_REVOCATION_CONSUMERS=%q: want a comma-separated list of numbers from 1 to 1000", os.Getenv("BENCH_REVOCATION_CONSUMERS"))
		}
		out = append(out, n)
	}
	return out
}
