package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/state"
)

// env is the function's configuration, read from its environment.
type env struct {
	// Providers is the registry; nil when Unconfigured.
	Providers *registry.Registry
	// Unconfigured, when set, says why the function has no providers: it was built
	// without a registry and PROVIDERS_FILE is unset.
	Unconfigured       string
	KMSKeyID           string
	StatePrefix        string
	MaxConcurrency     int
	SchedulePeriod     time.Duration
	MetricsNamespace   string
	PerProviderMetrics bool
	// QueueURL, when set, makes the function a fanned-out deployment's: scheduled
	// runs plan and send the due providers to this SQS queue, whose messages the
	// function then works through as a worker.
	QueueURL string
	// RegistryBucket and RegistryKey, when the bucket is set, name the S3 object the
	// registry is read from at every invocation; Providers is then nil.
	RegistryBucket, RegistryKey string
	// Options are the registry's settings, for the registries read at run time.
	Options registry.Options
	// PutParameterRate is the deployment's write budget, PutParameter calls a second
	// for all its invocations together; 0: none. WriteShares is how many invocations
	// may run at once (in fanout mode, WORKER_CONCURRENCY workers and a planner;
	// otherwise RESERVED_CONCURRENCY, at least 1), each pacing itself to
	// PutParameterRate / WriteShares (see ssmput.Budget).
	PutParameterRate float64
	WriteShares      int
	// LeaseBucket is the bucket that keeps the providers' rotation leases, under
	// leasePrefix: REGISTRY_BUCKET, also when PROVIDERS_FILE supplies the registry.
	// Without it a conditional rotation fails.
	LeaseBucket string
	// ForcedRotationInterval is the least time between two conditional rotations
	// of one provider (MIN_FORCED_ROTATION_INTERVAL); 0: no limit but the lease.
	ForcedRotationInterval time.Duration
}

// leasePrefix is where the rotation leases are kept in LeaseBucket; the function
// may write nothing else there.
const leasePrefix = "leases/"

// defaultForcedRotationInterval is MIN_FORCED_ROTATION_INTERVAL's default, and
// maxForcedRotationInterval its largest value: a day, past which a refused token
// would stay published for longer than most tokens live.
const (
	defaultForcedRotationInterval = time.Minute
	maxForcedRotationInterval     = 24 * time.Hour
)

// defaultPutParameterRate is PUT_PARAMETER_RATE's default: under the about 3
// PutParameter calls a second that an account and Region get with standard
// throughput, shared with everything else that writes parameters there.
const defaultPutParameterRate = 2

// defaultNamespace is METRICS_NAMESPACE's default; the template's alarms watch it.
const defaultNamespace = "TokenRefresher"

// rateExpr and cronExpr are EventBridge's schedule expressions. A rate's unit is
// singular for 1 and plural otherwise, as EventBridge requires.
var (
	rateExpr = regexp.MustCompile(`^rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)$`)
	cronExpr = regexp.MustCompile(`^cron\(\S+( \S+){5}\)$`)
)

// schedulePeriod reads the period of the schedule that runs the function: the
// refresh window must cover two periods. A cron expression has no single period:
// the default window (for 5 minutes) then applies. Anything else is refused, so a
// typo stops the function at start instead of silently assuming 5 minutes.
func schedulePeriod(expr string) (time.Duration, error) {
	if cronExpr.MatchString(expr) {
		return 0, nil
	}
	m := rateExpr.FindStringSubmatch(expr)
	if m == nil {
		return 0, errors.New(`want rate(N minute|minutes|hour|hours|day|days), N at least 1, or cron(...) with six fields`)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 365*24*60 {
		return 0, errors.New("the rate is out of range")
	}
	if plural := strings.HasSuffix(m[2], "s"); plural == (n == 1) {
		return 0, errors.New("the unit must be singular for 1 and plural otherwise, as in rate(1 minute) and rate(5 minutes)")
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
	return time.Duration(n) * unit, nil
}

// loadEnv reads the configuration. Every variable is optional; a bad value is an
// error naming the variable, so a misconfigured function fails at start.
func loadEnv(getenv func(string) string, embedded []byte) (env, error) {
	e := env{
		KMSKeyID:           getenv("TOKEN_KMS_KEY_ID"),
		StatePrefix:        "/" + strings.Trim(cmp.Or(getenv("STATE_PARAMETER_PREFIX"), state.DefaultPrefix), "/"),
		MaxConcurrency:     refresher.DefaultMaxConcurrency,
		MetricsNamespace:   cmp.Or(getenv("METRICS_NAMESPACE"), defaultNamespace),
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
	e.PutParameterRate, e.WriteShares = defaultPutParameterRate, 1
	if v := getenv("PUT_PARAMETER_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 10_000 || math.IsNaN(r) {
			return env{}, fmt.Errorf("PUT_PARAMETER_RATE=%q: want PutParameter calls a second, from 0 (no budget) to 10000", v)
		}
		e.PutParameterRate = r
	}
	if v := getenv("WORKER_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return env{}, fmt.Errorf("WORKER_CONCURRENCY=%q: want the fan-out queue's maximum concurrency, 1 to 1000", v)
		}
		e.WriteShares = n + 1 // and the planner
	}
	if v := getenv("RESERVED_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0 || n > 1000:
			return env{}, fmt.Errorf("RESERVED_CONCURRENCY=%q: want the instances reserved for the function, 0 (none) to 1000", v)
		case getenv("WORKER_CONCURRENCY") != "":
			return env{}, fmt.Errorf("RESERVED_CONCURRENCY=%q with WORKER_CONCURRENCY: a fanned-out deployment reserves WORKER_CONCURRENCY + 1; set RESERVED_CONCURRENCY without fan-out only", v)
		}
		// As many runs as are reserved may overlap, each at its share; with none
		// reserved, runs are assumed one at a time.
		e.WriteShares = max(n, 1)
	}
	if v := getenv("REFRESH_QUEUE_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return env{}, fmt.Errorf("REFRESH_QUEUE_URL=%q: want the queue's URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME", v)
		}
		e.QueueURL = v
	}
	e.LeaseBucket, e.ForcedRotationInterval = getenv("REGISTRY_BUCKET"), defaultForcedRotationInterval
	if v := getenv("MIN_FORCED_ROTATION_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxForcedRotationInterval {
			return env{}, fmt.Errorf("MIN_FORCED_ROTATION_INTERVAL=%q: want a duration from 0s (no limit but one rotation at a time) to 24h, such as 60s", v)
		}
		e.ForcedRotationInterval = d
	}
	if v := getenv("SCHEDULE_EXPRESSION"); v != "" {
		period, err := schedulePeriod(v)
		if err != nil {
			return env{}, fmt.Errorf("SCHEDULE_EXPRESSION=%q: %w", v, err)
		}
		e.SchedulePeriod = period
	}
	// TOKEN_PARAMETER_PREFIX is the registry's: it checks every parameter against it
	// and applies its default.
	opts := registry.Options{ParameterPrefix: getenv("TOKEN_PARAMETER_PREFIX")}
	e.Options = opts
	var err error
	if bucket := getenv("REGISTRY_BUCKET"); bucket != "" && getenv("PROVIDERS_FILE") == "" {
		return registryInS3(e, bucket, cmp.Or(getenv("REGISTRY_KEY"), catalog.DefaultKey))
	}
	if path := getenv("PROVIDERS_FILE"); path != "" {
		e.Providers, err = registry.LoadFile(path, opts)
	} else {
		e.Providers, err = registry.Load(bytes.NewReader(embedded), opts)
		if errors.Is(err, registry.ErrNoProviders) {
			e.Unconfigured = "this function has no provider registry: a stack reads it from REGISTRY_BUCKET (store one with `make providers PROVIDERS=FILE`); a local run sets PROVIDERS_FILE"
			return e, nil
		}
		if err != nil {
			err = fmt.Errorf("embedded providers.yaml: %w", err)
		}
	}
	if err != nil {
		return env{}, err
	}
	// Neither path may hold the other: state under the tokens puts records where
	// consumers read tokens, and tokens under the state let a record overwrite a
	// token and a policy on the records cover the tokens.
	tokensPrefix := e.Providers.ParameterPrefix()
	if e.StatePrefix == "/" || within(e.StatePrefix, tokensPrefix) || within(tokensPrefix, e.StatePrefix) {
		return env{}, fmt.Errorf("STATE_PARAMETER_PREFIX=%q: must be a path of its own, neither under nor above TOKEN_PARAMETER_PREFIX %s, so that readers of the tokens never meet the records and no record overwrites a token", e.StatePrefix, tokensPrefix)
	}
	if err := checkNameLengths(e, getenv("AWS_REGION")); err != nil {
		return env{}, err
	}
	return e, nil
}

// registryInS3 configures a function that reads its registry from S3 at run time.
// The settings the registry depends on are checked now, with an empty registry,
// so a bad prefix still stops the function at start.
func registryInS3(e env, bucket, key string) (env, error) {
	e.RegistryBucket, e.RegistryKey = bucket, key
	_, err := registry.Load(strings.NewReader(""), e.Options)
	if !errors.Is(err, registry.ErrNoProviders) {
		return env{}, fmt.Errorf("TOKEN_PARAMETER_PREFIX=%q: %w", e.Options.ParameterPrefix, err)
	}
	tokens := "/" + strings.Trim(cmp.Or(e.Options.ParameterPrefix, registry.DefaultParameterPrefix), "/")
	if e.StatePrefix == "/" || within(e.StatePrefix, tokens) || within(tokens, e.StatePrefix) {
		return env{}, fmt.Errorf("STATE_PARAMETER_PREFIX=%q: must be a path of its own, neither under nor above TOKEN_PARAMETER_PREFIX %s, so that readers of the tokens never meet the records and no record overwrites a token", e.StatePrefix, tokens)
	}
	return e, nil
}

// maxParameterARN is SSM's limit of a parameter name, which counts the whole ARN,
// arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME, not the name alone.
const maxParameterARN = 1011

// parameterARNLen is the length of the ARN of the parameter named name (starting
// with "/") in region, for any account: account ids are 12 digits.
func parameterARNLen(region, name string) int {
	partition := "aws"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return len("arn:"+partition+":ssm:"+region+":123456789012:parameter") + len(name)
}

// checkNameLengths refuses a token parameter, or the longest name of a provider's
// health record, whose ARN would exceed SSM's limit: the registry checks the name
// alone, which SSM would refuse at the first write. region is the function's
// (AWS_REGION); a Region name of the longest length stands in when it is not set.
func checkNameLengths(e env, region string) error {
	if region == "" {
		region = "ap-southeast-5"
	}
	for _, p := range e.Providers.Providers() {
		health := e.StatePrefix + "/health/" + p.Name
		for _, name := range []string{p.Parameter, health} {
			if n := parameterARNLen(region, name); n > maxParameterARN {
				return fmt.Errorf("provider %s: parameter %s...: its ARN in %s would be %d characters, SSM's limit is %d (it counts the ARN, not the name alone)",
					p.Name, name[:min(len(name), 60)], region, n, maxParameterARN)
			}
		}
	}
	return nil
}

// within reports whether path is parent or a path under it.
func within(path, parent string) bool {
	return strings.HasPrefix(path+"/", strings.TrimSuffix(parent, "/")+"/")
}
