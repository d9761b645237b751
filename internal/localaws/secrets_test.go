package localaws

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// secretsFake answers PutSecretValue from puts in turn, and CreateSecret with create.
type secretsFake struct {
	puts    []error
	create  error
	putN    int
	creates int
}

func (f *secretsFake) PutSecretValue(_ context.Context, _ *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	err := f.puts[min(f.putN, len(f.puts)-1)]
	f.putN++
	if err != nil {
		return nil, err
	}
	return &secretsmanager.PutSecretValueOutput{VersionId: aws.String("put")}, nil
}

func (f *secretsFake) CreateSecret(_ context.Context, _ *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	f.creates++
	if f.create != nil {
		return nil, f.create
	}
	return &secretsmanager.CreateSecretOutput{VersionId: aws.String("created")}, nil
}

func TestPutSecret(t *testing.T) {
	notFound := &smtypes.ResourceNotFoundException{Message: aws.String("no such secret")}
	exists := &smtypes.ResourceExistsException{Message: aws.String("already exists")}
	denied := errors.New("access denied")
	for _, tc := range []struct {
		name                string
		fake                secretsFake
		wantVersion         string
		wantErr             error
		wantPuts, wantCreat int
	}{
		{name: "existing secret", fake: secretsFake{puts: []error{nil}}, wantVersion: "put", wantPuts: 1},
		{name: "new secret", fake: secretsFake{puts: []error{notFound}}, wantVersion: "created", wantPuts: 1, wantCreat: 1},
		// A create that finds the secret made meanwhile (a retried create whose first
		// attempt succeeded, or another writer) gives it the value instead of failing.
		{name: "created meanwhile", fake: secretsFake{puts: []error{notFound, nil}, create: exists}, wantVersion: "put", wantPuts: 2, wantCreat: 1},
		{name: "create refused", fake: secretsFake{puts: []error{notFound}, create: denied}, wantErr: denied, wantPuts: 1, wantCreat: 1},
		{name: "put refused", fake: secretsFake{puts: []error{denied}}, wantErr: denied, wantPuts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := PutSecret(context.Background(), &tc.fake, "app/x", "id", "secret")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want errors.Is(err, %v)", err, tc.wantErr)
				}
			} else if err != nil || v != tc.wantVersion {
				t.Fatalf("got version %q, err %v; want %q, nil", v, err, tc.wantVersion)
			}
			if tc.fake.putN != tc.wantPuts || tc.fake.creates != tc.wantCreat {
				t.Fatalf("got %d puts and %d creates, want %d and %d", tc.fake.putN, tc.fake.creates, tc.wantPuts, tc.wantCreat)
			}
		})
	}
}
