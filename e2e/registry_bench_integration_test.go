//go:build integration

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

// BenchmarkRegistryPublish, run by make bench, measures the time from `tokenctl
// providers put` of a new provider to its token published by the deployed stack
// itself (its registry-change rule, else its schedule, rate(1 minute) here):
// BENCH_PUBLISH_PUTS puts (default 3) to one stack deployed with no providers, each
// adding one provider, timed from the start of the command to the first read of
// its valid token in SSM (polled every 100 ms).
func BenchmarkRegistryPublish(b *testing.B) {
	puts := max(awstest.EnvInt(b, "BENCH_PUBLISH_PUTS", 3), 1)
	tokenctl := buildTokenctl(b)
	for range b.N {
		r := newRegistryFlow(b, "single", tokenctl)
		var took []time.Duration
		for i := range puts {
			name := fmt.Sprintf("published-%d", i)
			file := r.writeRegistry(name+".yaml", r.entry(name))
			start := time.Now()
			if code, out := r.put(file); code != 0 {
				b.Fatalf("tokenctl providers put: got exit %d (%s), want 0", code, out)
			}
			for !r.token(name).Valid(time.Now()) {
				if time.Since(start) > 3*time.Minute {
					b.Fatalf("%s: not published within 3 minutes of its put", name)
				}
				time.Sleep(100 * time.Millisecond)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		each := make([]string, len(took))
		for i, d := range took {
			each[i] = fmt.Sprint(d.Milliseconds())
		}
		med := took[len(took)/2]
		fmt.Printf("\nbench: registry put_to_published_ms median=%d min=%d max=%d puts=%d (each, sorted: %s)\n",
			med.Milliseconds(), took[0].Milliseconds(), took[len(took)-1].Milliseconds(), len(took), strings.Join(each, ","))
		b.ReportMetric(float64(med.Milliseconds()), "put_to_published_ms")
	}
}
