// Package awstest connects integration tests to the AWS emulator (LocalStack) that
// `make test` starts. Integration tests carry the build tag "integration" and fail,
// never skip, when the emulator is not reachable: a test run that silently checked
// nothing against AWS would prove nothing. What programs other than tests need of
// the emulator is in package localaws.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Config returns an AWS configuration for the emulator named by AWS_ENDPOINT_URL and
// checks that it answers. It fails the test when AWS_ENDPOINT_URL is unset or does not
// point at a loopback address, so that tests never touch a real account.
func Config(t testing.TB) aws.Config {
	t.Helper()
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		t.Fatal("AWS_ENDPOINT_URL is not set: integration tests run against LocalStack; use `make test` (or `localstack/launcher run -- go test -tags integration ./...`)")
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") && !strings.HasPrefix(endpoint, "http://localhost:") {
		t.Fatalf("AWS_ENDPOINT_URL=%s is not a loopback emulator; refusing to run integration tests against it", endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(envOr("AWS_REGION", "us-east-1")),
	)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("the emulator at %s does not answer: %v", endpoint, err)
	}
	return cfg
}

// UniqueName returns prefix followed by a random suffix, so tests that share one
// emulator never see each other's secrets and parameters.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// EnvInt reads a benchmark's whole-number setting from the environment: def when
// the variable is unset, and the test fails when it is not a number of 0 or more.
func EnvInt(tb testing.TB, key string, def int) int {
	tb.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q: want a whole number", key, v)
	}
	return n
}
