package main

import (
	"testing"

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
