// Command refresher is the token refresher's Lambda function. It wires the
// configuration from the environment and the AWS clients to refresher.Handler;
// everything it does is found from there.
//
// Outside Lambda, `refresher -event FILE` runs one invocation against the AWS
// endpoint the SDK's standard settings name (AWS_ENDPOINT_URL for LocalStack),
// prints the result JSON on stdout and exits non-zero when any provider failed.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/kmssign"
	"github.com/token-refresher/token-refresher/internal/lease"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/queue"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/ssmput"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
)

// embeddedProviders is the registry used when neither REGISTRY_BUCKET nor
// PROVIDERS_FILE is set: the file
// the build was given (make build PROVIDERS=FILE embeds it with go build
// -overlay), or the empty providers.yaml: a function with no providers.
//
//go:embed providers.yaml
var embeddedProviders []byte

// defaultRunTimeout bounds a -event run, as Lambda's timeout bounds an invocation,
// unless -timeout says otherwise.
const defaultRunTimeout = 5 * time.Minute

func main() {
	eventFile := flag.String("event", "", "run one invocation with the event in `FILE`, print the result and exit")
	timeout := flag.Duration("timeout", defaultRunTimeout, "with -event: the invocation's timeout; work stops 5 s before it")
	flag.Parse()
	if *timeout <= refresher.DefaultReserve {
		fmt.Fprintf(os.Stderr, "-timeout %s: want more than the %s a run keeps in reserve\n", *timeout, refresher.DefaultReserve)
		os.Exit(2)
	}

	inLambda := os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" && *eventFile == ""
	out := os.Stderr // outside Lambda, stdout carries only the result
	if inLambda {
		out = os.Stdout
	}
	log := newLogger(inLambda)

	env, err := loadEnv(os.Getenv, embeddedProviders)
	if err != nil {
		log.Error("configuration refused", "error", err.Error())
		os.Exit(2)
	}
	awsCfg, err := loadAWSConfig(context.Background())
	if err != nil {
		log.Error("AWS configuration", "error", err.Error())
		os.Exit(2)
	}
	h := &coldStarts{handler: newFunction(awsCfg, env, log, out)}

	if !inLambda {
		if *eventFile == "" {
			fmt.Fprintln(os.Stderr, "not running in Lambda: give -event FILE to run one invocation (see events/)")
			os.Exit(2)
		}
		os.Exit(runOnce(h, *eventFile, *timeout))
	}
	lambda.StartWithOptions(h.Handle, lambda.WithEnableSIGTERM())
}

// newHandler builds the function from its configuration and AWS clients.
func newHandler(awsCfg aws.Config, env env, log *slog.Logger, metricsOut io.Writer) *refresher.Handler {
	if env.Unconfigured != "" {
		return &refresher.Handler{Unconfigured: env.Unconfigured, Log: log}
	}
	var jobs refresher.JobQueue
	shares := 0
	if env.QueueURL != "" {
		jobs = &queue.Queue{API: sqs.NewFromConfig(awsCfg), URL: env.QueueURL}
		shares = env.WriteShares
	}
	// Tokens and records are written through one budget: PutParameter's quota is
	// the account's, whatever is written.
	writes := pacedSSM{Client: ssm.NewFromConfig(awsCfg, throttleAware)}
	writes.budget = ssmput.Budget{API: writes.Client, Limiter: ssmput.NewLimiter(env.PutParameterRate, env.WriteShares)}
	var leases refresher.LeaseStore
	if env.LeaseBucket != "" {
		leases = &lease.Store{Objects: lease.S3{API: catalog.NewClient(awsCfg), Bucket: env.LeaseBucket},
			Prefix: leasePrefix, Interval: env.ForcedRotationInterval}
	}
	return &refresher.Handler{
		Log: log,
		Refresher: &refresher.Refresher{
			Queue:     jobs,
			Shares:    shares,
			Leases:    leases,
			Providers: env.Providers,
			Secrets:   &secrets.Source{API: secretsmanager.NewFromConfig(awsCfg)},
			Store: &store.Store{
				API:      writes,
				Prefix:   env.Providers.ParameterPrefix(),
				KMSKeyID: env.KMSKeyID,
				Log:      log,
			},
			State:  &state.Store{API: writes, Prefix: env.StatePrefix},
			Client: &oauth.Client{UserAgent: "token-refresher"},
			Keys:   kmssign.Keys{API: kms.NewFromConfig(awsCfg)},
			// One cache per environment: warm invocations reuse each issuer's document.
			Discovery:      discovery.NewCache(&discovery.Fetcher{}, 0, nil),
			Policy:         refresher.Policy{Period: env.SchedulePeriod},
			Writes:         writes.budget,
			MaxConcurrency: env.MaxConcurrency,
			Log:            log,
			Metrics:        &refresher.Metrics{Out: metricsOut, Namespace: env.MetricsNamespace, PerProvider: env.PerProviderMetrics},
		},
	}
}

// pacedSSM is the SSM client with its writes paced to the write budget.
type pacedSSM struct {
	*ssm.Client
	budget ssmput.Budget
}

func (p pacedSSM) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return p.budget.PutParameter(ctx, in, optFns...)
}

// throttleAware makes the SSM client back off as a whole once it is throttled:
// writes come in bursts of MAX_CONCURRENCY and PutParameter's default quota is a few
// per second. The SDK's adaptive mode rate-limits every call of the client after a
// throttle, and more attempts let a burst drain within the run instead of failing.
func throttleAware(o *ssm.Options) {
	o.Retryer = retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
		ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) { so.MaxAttempts = 8 })
	})
}

// runOnce handles one event from a file as Lambda would and returns the exit code.
func runOnce(h handler, path string, timeout time.Duration) int {
	event, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res, runErr := h.Handle(ctx, event)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "error:", runErr)
	}
	return exitCode(runErr)
}

// exitCode is the exit status of a run that ended with err: 0 when it did not, 2
// for bad configuration, which a build without a registry is as much as a bad
// variable, and 1 when a provider failed.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, refresher.ErrUnconfigured):
		return 2
	}
	return 1
}

// newLogger logs JSON lines: in Lambda through aws-lambda-go's handler, which adds
// the request id and follows the function's log level; elsewhere to stderr.
func newLogger(inLambda bool) *slog.Logger {
	if inLambda {
		return slog.New(invocationAttrs{Handler: lambdacontext.NewLogHandler(), function: os.Getenv("AWS_LAMBDA_FUNCTION_NAME")})
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: lambdacontext.ReplaceAttr}))
}
