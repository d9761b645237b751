package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// env is the function's configuration, read from its environment.
type env struct {
	Providers          *registry.Registry
	KMSKeyID           string
	MaxConcurrency     int
	SchedulePeriod     time.Duration
	MetricsNamespace   string
	PerProviderMetrics bool
}

// defaultNamespace is METRICS_NAMESPACE's default; the template's alarms watch it.
const defaultNamespace = "TokenRefresher"

var rateExpr = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// loadEnv reads the configuration. Every variable is optional; a bad value is an
// error naming the variable, so a misconfigured function fails at start.
func loadEnv(getenv func(string) string, embedded []byte) (env, error) {
	e := env{
		KMSKeyID:           getenv("TOKEN_KMS_KEY_ID"),
		MaxConcurrency:     refresher.DefaultMaxConcurrency,
		MetricsNamespace:   or(getenv("METRICS_NAMESPACE"), defaultNamespace),
		PerProviderMetrics: true,
	}
	if v := getenv("MAX_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return env{}, fmt.Errorf("MAX_CONCURRENCY=%q: want a whole number from 1 to 256", v)
		}
		e.MaxConcurrency = n
	}
	if v := getenv("PER_PROVIDER_METRICS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return env{}, fmt.Errorf("PER_PROVIDER_METRICS=%q: want true or false", v)
		}
		e.PerProviderMetrics = b
	}
	if v := getenv("SCHEDULE_EXPRESSION"); v != "" {
		// The refresh window must cover two schedule periods; learn the period from
		// the same expression the schedule uses. A cron expression has no single
		// period: the default window (for 5 minutes) then applies.
		if m := rateExpr.FindStringSubmatch(v); m != nil {
			n, _ := strconv.Atoi(m[1])
			unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
			e.SchedulePeriod = time.Duration(n) * unit
		}
	}
	// TOKEN_PARAMETER_PREFIX is the registry's: it checks every parameter against it
	// and applies its default.
	opts := registry.Options{ParameterPrefix: getenv("TOKEN_PARAMETER_PREFIX")}
	var err error
	if path := getenv("PROVIDERS_FILE"); path != "" {
		e.Providers, err = registry.LoadFile(path, opts)
	} else {
		e.Providers, err = registry.Load(bytes.NewReader(embedded), opts)
		if err != nil {
			err = fmt.Errorf("embedded providers.yaml: %w", err)
		}
	}
	if err != nil {
		return env{}, err
	}
	return e, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
