package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func TestThrottleAware(t *testing.T) {
	var o ssm.Options
	throttleAware(&o)
	if _, ok := o.Retryer.(*retry.AdaptiveMode); !ok {
		t.Fatalf("retryer %T, want the SDK's adaptive mode", o.Retryer)
	}
	if n := o.Retryer.MaxAttempts(); n != 8 {
		t.Fatalf("MaxAttempts = %d, want 8", n)
	}
}

// TestRunOnceUnconfigured: a build without a registry exits as bad configuration
// does, with 2, not as a failed provider.
func TestRunOnceUnconfigured(t *testing.T) {
	e, err := loadEnv(func(string) string { return "" }, nil)
	if err != nil || e.Unconfigured == "" {
		t.Fatalf("got %+v, %v; want an unconfigured deployment", e, err)
	}
	h := newHandler(aws.Config{}, e, slog.New(slog.DiscardHandler), io.Discard)
	if got := runOnce(h, "../../events/scheduled.json", time.Minute); got != 2 {
		t.Errorf("got exit status %d, want 2", got)
	}
}
