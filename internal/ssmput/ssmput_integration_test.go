//go:build integration

package ssmput

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

// TestIntegrationPutRefusal: a refusal from SSM itself, through the SDK's real
// error chain, comes back as its operation and code with the fixed message.
func TestIntegrationPutRefusal(t *testing.T) {
	api := ssm.NewFromConfig(awstest.Config(t))
	ctx := context.Background()
	name := "/" + awstest.UniqueName("tier-") + "/x"
	var tiers Tiers
	in := func() *ssm.PutParameterInput {
		return &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("value-1"), Type: types.ParameterTypeString}
	}
	if _, err := tiers.Put(ctx, api, in(), nil); err != nil {
		t.Fatal(err)
	}
	_, err := tiers.Put(ctx, api, in(), nil) // exists, and Overwrite is not set
	var e *Error
	if !errors.As(err, &e) || e.Operation != "PutParameter" || e.Code != "ParameterAlreadyExists" || e.Error() != "PutParameter: ParameterAlreadyExists: "+fixedMessage {
		t.Fatalf("got %v, want PutParameter's ParameterAlreadyExists with the fixed message", err)
	}
}
