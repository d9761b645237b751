package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauthtest"
)

// operationsPage is where the metrics a deployment pays for are documented.
const operationsPage = "../../docs/operations.md"

// documentedMetrics is what the costs section of docs/operations.md says the
// function emits: the names, how many there are without a dimension and how many
// more each provider adds with per-provider metrics.
type documentedMetrics struct {
	names       []string
	count       int
	perProvider int
}

var (
	metricsBullet = regexp.MustCompile(`(?s)- Metrics: (\d+) without dimension \(([^)]*)\),\s+plus (\d+) per provider`)
	backticked    = regexp.MustCompile("`([^`]+)`")
	providersHead = regexp.MustCompile(`^\*\*([\d,]+) providers?\*\*`)
	metricsRow    = regexp.MustCompile(`^\| Custom metrics \| (\d+)(?: \+ ([\d,]+) per-provider)? \|(.*)\|$`)
	extraMetrics  = regexp.MustCompile(`\+([\d,]+) metrics`)
)

func number(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		t.Fatalf("%s: %q is no number: %v", operationsPage, s, err)
	}
	return n
}

// readDocumentedMetrics parses the metrics statement of the costs section, and
// checks that the cost tables count the same: for K providers, the stated number
// without dimension and K times the per-provider number with it.
func readDocumentedMetrics(t *testing.T) documentedMetrics {
	t.Helper()
	b, err := os.ReadFile(operationsPage)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	m := metricsBullet.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no statement %q: the test cannot see which metrics the docs list", operationsPage, "- Metrics: N without dimension (`A`, ...), plus M per provider")
	}
	var d documentedMetrics
	d.count, d.perProvider = number(t, m[1]), number(t, m[3])
	for _, n := range backticked.FindAllStringSubmatch(m[2], -1) {
		d.names = append(d.names, n[1])
	}
	if len(d.names) != d.count {
		t.Errorf("%s says %d metrics without dimension and names %d: %q", operationsPage, d.count, len(d.names), d.names)
	}
	if d.perProvider != d.count {
		t.Errorf("%s says %d metrics per provider, want %d: each provider's line declares every metric under both dimension sets", operationsPage, d.perProvider, d.count)
	}

	providers, rows := 0, 0
	for line := range strings.SplitSeq(text, "\n") {
		if h := providersHead.FindStringSubmatch(line); h != nil {
			providers = number(t, h[1])
			continue
		}
		r := metricsRow.FindStringSubmatch(strings.TrimSpace(line))
		if r == nil {
			continue
		}
		rows++
		if got := number(t, r[1]); got != d.count {
			t.Errorf("%s, %d providers: cost table counts %d metrics without dimension, want %d", operationsPage, providers, got, d.count)
		}
		per := r[2]
		if per == "" {
			if e := extraMetrics.FindStringSubmatch(r[3]); e != nil {
				per = e[1]
			}
		}
		if per != "" {
			if got, want := number(t, per), providers*d.perProvider; got != want {
				t.Errorf("%s, %d providers: cost table counts %d per-provider metrics, want %d × %d = %d", operationsPage, providers, got, providers, d.perProvider, want)
			}
		}
	}
	if rows == 0 {
		t.Errorf("%s: no %q row in a cost table", operationsPage, "| Custom metrics |")
	}
	return d
}

// emittedMetrics returns, from EMF lines, the metric names declared under each
// dimension set, keyed by the set's dimensions joined with ",".
func emittedMetrics(t *testing.T, out string) map[string]map[string]bool {
	t.Helper()
	sets := map[string]map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var m struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Dimensions [][]string
					Metrics    []struct{ Name string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		for _, cw := range m.AWS.CloudWatchMetrics {
			for _, dims := range cw.Dimensions {
				key := strings.Join(dims, ",")
				if sets[key] == nil {
					sets[key] = map[string]bool{}
				}
				for _, def := range cw.Metrics {
					sets[key][def.Name] = true
				}
			}
		}
	}
	return sets
}

// TestDocumentedMetricsAreTheEmittedOnes: the metrics docs/operations.md lists, and
// counts in its cost tables, are exactly those the function emits, without
// dimension and under the Provider dimension, over invocations that refresh, stay
// idle and fail. A metric added without documenting it, or documented and never
// emitted, fails here.
func TestDocumentedMetricsAreTheEmittedOnes(t *testing.T) {
	doc := readDocumentedMetrics(t)

	w := newWorld(t)
	var out bytes.Buffer
	r := w.refresher()
	r.Metrics = &Metrics{Out: &out, Namespace: "TokenRefresher", PerProvider: true}
	h := &Handler{Refresher: r}
	scheduled := json.RawMessage(`{"detail-type":"Scheduled Event","source":"aws.events"}`)
	if _, err := h.Handle(context.Background(), scheduled); err != nil {
		t.Fatalf("first scheduled run: %v", err)
	}
	if res, err := h.Handle(context.Background(), scheduled); err != nil || !res.Idle {
		t.Fatalf("second scheduled run: got err %v, idle %v; want an idle run", err, res.Idle)
	}
	w.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.WrongCredentials})
	if _, err := h.Handle(context.Background(), json.RawMessage(`{"action":"rotate","providers":["*"]}`)); err == nil {
		t.Fatal("a rotation with a refusing provider succeeded; want it to fail")
	}

	want := slices.Sorted(slices.Values(doc.names))
	sets := emittedMetrics(t, out.String())
	if got := slices.Sorted(maps.Keys(sets)); !slices.Equal(got, []string{"", "Provider"}) {
		t.Fatalf("got dimension sets %q, want none and Provider", got)
	}
	for key, names := range sets {
		if got := slices.Sorted(maps.Keys(names)); !slices.Equal(got, want) {
			t.Errorf("dimensions %q: got metrics %q, want the %d that %s lists: %q", key, got, doc.count, operationsPage, want)
		}
	}
}
