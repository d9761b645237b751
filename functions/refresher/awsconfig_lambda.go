//go:build lambda.norpc

package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// loadAWSConfig, in the build for Lambda, reads what Lambda gives every function:
// its region, its role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN) and, in LocalStack, AWS_ENDPOINT_URL. The SDK's default chain
// (config.LoadDefaultConfig) would find the same, but links every other source it
// knows (profiles, SSO, STS, the instance metadata service), about a megabyte of
// the binary and of its start-up, which a Lambda function never uses. Other builds
// use that chain (awsconfig.go).
func loadAWSConfig(context.Context) (aws.Config, error) {
	return envAWSConfig(os.Getenv)
}

func envAWSConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if region == "" || id == "" || secret == "" {
		return aws.Config{}, errors.New("AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set, as Lambda sets them")
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
	}
	if endpoint := getenv("AWS_ENDPOINT_URL"); endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cfg, nil
}
