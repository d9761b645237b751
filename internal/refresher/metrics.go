package refresher

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Metric names, as the alarms in template.yaml use them.
const (
	metricRefreshed       = "Refreshed"
	metricFailed          = "Failed"
	metricRefreshLatency  = "RefreshLatency"
	metricSecondsToExpiry = "SecondsToExpiry"
	// metricDegraded is 1 for a provider whose published token was obtained with
	// the previous client secret because the current one was refused.
	metricDegraded = "Degraded"
)

// Metrics writes CloudWatch Embedded Metric Format lines: JSON log lines that
// CloudWatch Logs turns into metrics, with no API call and no extra latency.
// Each provider's line counts, with no dimension, towards the function-wide figures
// the alarms watch and, with PerProvider, under the Provider dimension too. A nil
// *Metrics writes nothing. Set Out and Namespace; it must not be copied once in use.
type Metrics struct {
	// Out receives the lines: in Lambda, the function's stdout.
	Out io.Writer
	// Namespace is the CloudWatch namespace the alarms watch.
	Namespace string
	// PerProvider adds the Provider dimension, which makes five custom metrics per
	// provider (see docs/operations.md, costs).
	PerProvider bool

	mu sync.Mutex
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// observe writes one provider's figures at now, the run's clock. expiresAt is
// the expiry of the token now published for it, zero when there is none; degraded
// says that token was obtained with the previous client secret.
func (m *Metrics) observe(now time.Time, provider string, status Status, latency time.Duration, expiresAt time.Time, degraded bool) {
	if m == nil {
		return
	}
	values := map[string]any{"Provider": provider}
	var defs []emfMetric
	add := func(name, unit string, v any) {
		defs = append(defs, emfMetric{Name: name, Unit: unit})
		values[name] = v
	}
	// A queued provider's worker counts it, and a pending one the run that rotates it.
	if status != StatusSkipped && status != StatusQueued && status != StatusPending {
		add(metricRefreshed, "Count", boolInt(status == StatusRefreshed))
		add(metricFailed, "Count", boolInt(status == StatusFailed))
		add(metricRefreshLatency, "Milliseconds", latency.Milliseconds())
	}
	if !expiresAt.IsZero() {
		add(metricSecondsToExpiry, "Seconds", int64(expiresAt.Sub(now).Seconds()))
		add(metricDegraded, "Count", boolInt(degraded))
	}
	if len(defs) == 0 {
		return
	}
	dims := [][]string{{}}
	if m.PerProvider {
		dims = [][]string{{"Provider"}, {}}
	}
	m.write(now, values, defs, dims)
}

// write emits one EMF line of values, stamped now, declaring defs under each dimension set.
func (m *Metrics) write(now time.Time, values map[string]any, defs []emfMetric, dims [][]string) {
	values["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  m.Namespace,
			"Dimensions": dims,
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(values)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.Out.Write(append(line, '\n'))
}

// observeSoonest writes, for a run that read no token, the seconds left of the
// soonest-expiring one, with no dimension: what the expiry alarm watches, so that
// idle runs keep it fed.
func (m *Metrics) observeSoonest(now, expiresAt time.Time) {
	if m == nil || expiresAt.IsZero() {
		return
	}
	m.write(now, map[string]any{metricSecondsToExpiry: int64(expiresAt.Sub(now).Seconds())},
		[]emfMetric{{Name: metricSecondsToExpiry, Unit: "Seconds"}}, [][]string{{}})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
