// Package localaws holds what the programs that run against a local AWS emulator
// share: the demo, the benchmark and the integration tests. It stores client
// credentials as the function expects them and counts the AWS calls a client makes.
package localaws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SecretWriter is the part of the Secrets Manager client PutSecret uses.
type SecretWriter interface {
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
}

// PutSecret stores client credentials as the secret id: it creates the secret, or
// gives an existing one a new current version (the old one becomes AWSPREVIOUS).
// It returns the new version's id.
func PutSecret(ctx context.Context, sm SecretWriter, id, clientID, clientSecret string) (string, error) {
	val, err := json.Marshal(map[string]string{"client_id": clientID, "client_secret": clientSecret})
	if err != nil {
		return "", err
	}
	put := func() (string, error) {
		out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(val))})
		if err != nil {
			return "", fmt.Errorf("put secret %s: %w", id, err)
		}
		return aws.ToString(out.VersionId), nil
	}
	v, err := put()
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return v, err
	}
	c, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(string(val))})
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		// The secret was made meanwhile: by another writer, or by this very create
		// when the SDK retried it after the first attempt's answer was lost (seen on
		// a loaded machine, 1 of 500 secrets). Either way it exists now: give it the
		// value as any existing secret.
		return put()
	}
	if err != nil {
		return "", fmt.Errorf("create secret %s: %w", id, err)
	}
	return aws.ToString(c.VersionId), nil
}
