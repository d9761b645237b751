//go:build integration

package tokens_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// emulatorConfig returns an AWS configuration for the emulator named by
// AWS_ENDPOINT_URL and checks that it answers. This module is what consumers
// download, so it carries its own copy of the main module's test helper rather than
// importing the function's packages. It fails, never skips, when the emulator is
// missing, and refuses any endpoint off loopback so a test never touches an account.
func emulatorConfig(t testing.TB) aws.Config {
	t.Helper()
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		t.Fatal("AWS_ENDPOINT_URL is not set: integration tests run against LocalStack; use `make test` (or `localstack/launcher run -- go test -tags integration ./...` in pkg/tokens)")
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") && !strings.HasPrefix(endpoint, "http://localhost:") {
		t.Fatalf("AWS_ENDPOINT_URL=%s is not a loopback emulator; refusing to run integration tests against it", endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	if _, err := ssm.NewFromConfig(cfg).DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: aws.Int32(1)}); err != nil {
		t.Fatalf("the emulator at %s does not answer: %v", endpoint, err)
	}
	return cfg
}

// uniqueName returns prefix followed by a random suffix, so tests that share one
// emulator never see each other's parameters.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
