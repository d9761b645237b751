package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "providers.yaml")
	reg := "providers:\n  - {name: one, token_url: 'https://one.example/token', secret_id: s/one}\n"
	if err := os.WriteFile(file, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		vars    map[string]string
		check   func(t *testing.T, e env)
		wantErr string
	}{
		{"defaults", map[string]string{"PROVIDERS_FILE": file}, func(t *testing.T, e env) {
			if e.Providers.ParameterPrefix() != "/token-refresher/tokens" || e.MaxConcurrency != 8 || e.SchedulePeriod != 0 ||
				!e.PerProviderMetrics || e.MetricsNamespace != "TokenRefresher" || e.KMSKeyID != "" || e.Unconfigured != "" ||
				e.StatePrefix != "/token-refresher/state" {
				t.Fatalf("%+v", e)
			}
		}, ""},
		// A build without a registry is a deployment that says it is unconfigured,
		// not one whose providers fail.
		{"built without a registry", nil, func(t *testing.T, e env) {
			if e.Providers != nil || !strings.Contains(e.Unconfigured, "PROVIDERS=FILE") {
				t.Fatalf("%+v", e)
			}
		}, ""},
		{"everything set", map[string]string{
			"PROVIDERS_FILE": file, "TOKEN_PARAMETER_PREFIX": "/x/y", "TOKEN_KMS_KEY_ID": "alias/k",
			"MAX_CONCURRENCY": "32", "PER_PROVIDER_METRICS": "false", "METRICS_NAMESPACE": "NS",
			"SCHEDULE_EXPRESSION": "rate(10 minutes)", "REFRESH_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo",
		}, func(t *testing.T, e env) {
			p, ok := e.Providers.Lookup("one")
			if !ok || p.Parameter != "/x/y/one" || e.KMSKeyID != "alias/k" || e.MaxConcurrency != 32 ||
				e.PerProviderMetrics || e.MetricsNamespace != "NS" || e.SchedulePeriod != 10*time.Minute ||
				e.QueueURL != "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo" {
				t.Fatalf("%+v %+v", e, p)
			}
		}, ""},
		{"rate in hours", map[string]string{"SCHEDULE_EXPRESSION": "rate(1 hour)"}, func(t *testing.T, e env) {
			if e.SchedulePeriod != time.Hour {
				t.Fatal(e.SchedulePeriod)
			}
		}, ""},
		{"cron keeps the default period", map[string]string{"SCHEDULE_EXPRESSION": "cron(0/5 * * * ? *)"}, func(t *testing.T, e env) {
			if e.SchedulePeriod != 0 {
				t.Fatal(e.SchedulePeriod)
			}
		}, ""},
		{"rate(1 minute)", map[string]string{"SCHEDULE_EXPRESSION": "rate(1 minute)"}, func(t *testing.T, e env) {
			if e.SchedulePeriod != time.Minute {
				t.Fatal(e.SchedulePeriod)
			}
		}, ""},
		// A typo stops the function instead of silently meaning 5 minutes.
		{"abbreviated unit", map[string]string{"SCHEDULE_EXPRESSION": "rate(5 mins)"}, nil, "SCHEDULE_EXPRESSION"},
		{"capitalised unit", map[string]string{"SCHEDULE_EXPRESSION": "rate(5 Minutes)"}, nil, "SCHEDULE_EXPRESSION"},
		{"zero rate", map[string]string{"SCHEDULE_EXPRESSION": "rate(0 minutes)"}, nil, "SCHEDULE_EXPRESSION"},
		{"plural for one", map[string]string{"SCHEDULE_EXPRESSION": "rate(1 minutes)"}, nil, "singular"},
		{"singular for many", map[string]string{"SCHEDULE_EXPRESSION": "rate(5 minute)"}, nil, "plural"},
		{"cron with too few fields", map[string]string{"SCHEDULE_EXPRESSION": "cron(0/5 * * *)"}, nil, "SCHEDULE_EXPRESSION"},
		{"neither", map[string]string{"SCHEDULE_EXPRESSION": "every 5 minutes"}, nil, "SCHEDULE_EXPRESSION"},
		{"concurrency not a number", map[string]string{"MAX_CONCURRENCY": "many"}, nil, "MAX_CONCURRENCY"},
		{"concurrency zero", map[string]string{"MAX_CONCURRENCY": "0"}, nil, "MAX_CONCURRENCY"},
		{"queue name, not URL", map[string]string{"REFRESH_QUEUE_URL": "jobs.fifo"}, nil, "REFRESH_QUEUE_URL"},
		{"queue URL without a path", map[string]string{"REFRESH_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/"}, nil, "REFRESH_QUEUE_URL"},
		{"queue ARN", map[string]string{"REFRESH_QUEUE_URL": "arn:aws:sqs:eu-west-1:123456789012:jobs"}, nil, "REFRESH_QUEUE_URL"},
		{"metrics flag", map[string]string{"PER_PROVIDER_METRICS": "sometimes"}, nil, "PER_PROVIDER_METRICS"},
		// Forced rotations: one a minute by default, 0 for no spacing, anything
		// else refused; the leases live in the registry bucket, whatever supplies
		// the registry.
		{"forced rotation default", map[string]string{"PROVIDERS_FILE": file}, func(t *testing.T, e env) {
			if e.ForcedRotationInterval != time.Minute || e.LeaseBucket != "" {
				t.Fatalf("got interval %s, lease bucket %q; want 1m0s and none", e.ForcedRotationInterval, e.LeaseBucket)
			}
		}, ""},
		{"forced rotation interval and leases", map[string]string{"PROVIDERS_FILE": file, "REGISTRY_BUCKET": "b", "MIN_FORCED_ROTATION_INTERVAL": "5m"}, func(t *testing.T, e env) {
			if e.ForcedRotationInterval != 5*time.Minute || e.LeaseBucket != "b" {
				t.Fatalf("got interval %s, lease bucket %q; want 5m0s and b", e.ForcedRotationInterval, e.LeaseBucket)
			}
		}, ""},
		{"forced rotation interval zero", map[string]string{"PROVIDERS_FILE": file, "MIN_FORCED_ROTATION_INTERVAL": "0"}, func(t *testing.T, e env) {
			if e.ForcedRotationInterval != 0 {
				t.Fatalf("got interval %s, want 0s", e.ForcedRotationInterval)
			}
		}, ""},
		{"forced rotation interval without unit", map[string]string{"MIN_FORCED_ROTATION_INTERVAL": "60"}, nil, "MIN_FORCED_ROTATION_INTERVAL"},
		{"forced rotation interval negative", map[string]string{"MIN_FORCED_ROTATION_INTERVAL": "-1s"}, nil, "MIN_FORCED_ROTATION_INTERVAL"},
		{"forced rotation interval too long", map[string]string{"MIN_FORCED_ROTATION_INTERVAL": "25h"}, nil, "MIN_FORCED_ROTATION_INTERVAL"},
		{"missing registry file", map[string]string{"PROVIDERS_FILE": "/nonexistent/providers.yaml"}, nil, "providers.yaml"},
		{"registry outside the prefix", map[string]string{"PROVIDERS_FILE": file, "TOKEN_PARAMETER_PREFIX": "/"}, nil, "prefix"},
		{"state under the token prefix", map[string]string{"PROVIDERS_FILE": file, "STATE_PARAMETER_PREFIX": "/token-refresher/tokens/state"}, nil, "STATE_PARAMETER_PREFIX"},
		// A stack reads its registry from S3 at run time; PROVIDERS_FILE, for local
		// runs, wins over it.
		{"registry in S3", map[string]string{"REGISTRY_BUCKET": "stack-registry"}, func(t *testing.T, e env) {
			if e.Providers != nil || e.Unconfigured != "" || e.RegistryBucket != "stack-registry" || e.RegistryKey != "providers.yaml" {
				t.Fatalf("%+v", e)
			}
		}, ""},
		{"registry file wins over S3", map[string]string{"REGISTRY_BUCKET": "b", "PROVIDERS_FILE": file}, func(t *testing.T, e env) {
			if e.Providers == nil || e.RegistryBucket != "" {
				t.Fatalf("%+v", e)
			}
		}, ""},
		{"registry in S3 outside the prefix", map[string]string{"REGISTRY_BUCKET": "b", "TOKEN_PARAMETER_PREFIX": "/"}, nil, "TOKEN_PARAMETER_PREFIX"},
		{"registry in S3, state under the token prefix", map[string]string{"REGISTRY_BUCKET": "b", "STATE_PARAMETER_PREFIX": "/token-refresher/tokens/state"}, nil, "STATE_PARAMETER_PREFIX"},
		{"tokens under the state prefix", map[string]string{"PROVIDERS_FILE": file, "STATE_PARAMETER_PREFIX": "/tr", "TOKEN_PARAMETER_PREFIX": "/tr/health"}, nil, "STATE_PARAMETER_PREFIX"},
		{"same prefix", map[string]string{"PROVIDERS_FILE": file, "STATE_PARAMETER_PREFIX": "/tr/", "TOKEN_PARAMETER_PREFIX": "/tr"}, nil, "STATE_PARAMETER_PREFIX"},
		{"sibling sharing a stem", map[string]string{"PROVIDERS_FILE": file, "STATE_PARAMETER_PREFIX": "/tr", "TOKEN_PARAMETER_PREFIX": "/tr-tokens"}, func(t *testing.T, e env) {
			if e.StatePrefix != "/tr" || e.Providers.ParameterPrefix() != "/tr-tokens" {
				t.Fatalf("got state %s, tokens %s; want /tr and /tr-tokens", e.StatePrefix, e.Providers.ParameterPrefix())
			}
		}, ""},
		{"registry in S3, tokens under the state prefix", map[string]string{"REGISTRY_BUCKET": "b", "STATE_PARAMETER_PREFIX": "/tr", "TOKEN_PARAMETER_PREFIX": "/tr/health"}, nil, "STATE_PARAMETER_PREFIX"},
		{"write budget by default", map[string]string{"PROVIDERS_FILE": file}, func(t *testing.T, e env) {
			if e.PutParameterRate != 2 || e.WriteShares != 1 {
				t.Fatalf("got %v writes a second in %d shares, want 2 in 1", e.PutParameterRate, e.WriteShares)
			}
		}, ""},
		{"write budget shared by workers and the planner", map[string]string{"PROVIDERS_FILE": file, "PUT_PARAMETER_RATE": "9.5", "WORKER_CONCURRENCY": "4"}, func(t *testing.T, e env) {
			if e.PutParameterRate != 9.5 || e.WriteShares != 5 {
				t.Fatalf("got %v writes a second in %d shares, want 9.5 in 5", e.PutParameterRate, e.WriteShares)
			}
		}, ""},
		{"no write budget", map[string]string{"PROVIDERS_FILE": file, "PUT_PARAMETER_RATE": "0"}, func(t *testing.T, e env) {
			if e.PutParameterRate != 0 {
				t.Fatalf("got %v, want 0", e.PutParameterRate)
			}
		}, ""},
		{"bad write budget", map[string]string{"PROVIDERS_FILE": file, "PUT_PARAMETER_RATE": "fast"}, nil, "PUT_PARAMETER_RATE"},
		{"negative write budget", map[string]string{"PROVIDERS_FILE": file, "PUT_PARAMETER_RATE": "-1"}, nil, "PUT_PARAMETER_RATE"},
		{"bad worker concurrency", map[string]string{"PROVIDERS_FILE": file, "WORKER_CONCURRENCY": "0"}, nil, "WORKER_CONCURRENCY"},
		{"write budget shared by reserved runs", map[string]string{"PROVIDERS_FILE": file, "RESERVED_CONCURRENCY": "3"}, func(t *testing.T, e env) {
			if e.WriteShares != 3 {
				t.Fatalf("got %d shares, want 3", e.WriteShares)
			}
		}, ""},
		{"nothing reserved: one share", map[string]string{"PROVIDERS_FILE": file, "RESERVED_CONCURRENCY": "0"}, func(t *testing.T, e env) {
			if e.WriteShares != 1 {
				t.Fatalf("got %d shares, want 1", e.WriteShares)
			}
		}, ""},
		{"bad reserved concurrency", map[string]string{"PROVIDERS_FILE": file, "RESERVED_CONCURRENCY": "-1"}, nil, "RESERVED_CONCURRENCY"},
		{"reserved concurrency fanned out", map[string]string{"PROVIDERS_FILE": file, "RESERVED_CONCURRENCY": "1", "WORKER_CONCURRENCY": "4"}, nil, "RESERVED_CONCURRENCY"},
		{"state prefix", map[string]string{"PROVIDERS_FILE": file, "STATE_PARAMETER_PREFIX": "/acme/state/"}, func(t *testing.T, e env) {
			if e.StatePrefix != "/acme/state" {
				t.Fatal(e.StatePrefix)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := loadEnv(func(k string) string { return tt.vars[k] }, embeddedProviders)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, e)
		})
	}
}

// TestLoadEnvParameterARNLimit: SSM's 1,011-character limit counts the parameter's
// whole ARN, so a name the registry accepts may still be too long.
func TestLoadEnvParameterARNLimit(t *testing.T) {
	prefix := len("arn:aws:ssm:us-east-1:123456789012:parameter")
	for _, tt := range []struct {
		name    string
		param   int // the parameter name's length
		wantErr bool
	}{
		{"ARN at the limit", 1011 - prefix, false},
		{"ARN one over", 1011 - prefix + 1, true},
		{"name alone under the limit", 1000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			param := "/token-refresher/tokens/"
			param += strings.Repeat("x", tt.param-len(param))
			file := filepath.Join(t.TempDir(), "providers.yaml")
			reg := "providers:\n  - {name: one, token_url: 'https://one.example/token', secret_id: s/one, parameter: '" + param + "'}\n"
			if err := os.WriteFile(file, []byte(reg), 0o600); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"PROVIDERS_FILE": file, "AWS_REGION": "us-east-1"}
			_, err := loadEnv(func(k string) string { return vars[k] }, embeddedProviders)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("got error %v, want one: %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "1011") {
				t.Errorf("got %v, want one naming the limit", err)
			}
		})
	}
}
