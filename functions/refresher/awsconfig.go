//go:build !lambda.norpc

package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// loadAWSConfig, in every build but the one for Lambda, is the SDK's default chain:
// environment, shared config and credentials files, SSO, and so on, so that
// `refresher -event FILE` runs with whatever credentials its user has. The build for
// Lambda reads only what Lambda gives (awsconfig_lambda.go).
func loadAWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx)
}
