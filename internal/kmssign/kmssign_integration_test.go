//go:build integration

package kmssign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

// newTestKey creates a SIGN_VERIFY key of spec in the emulator's KMS, scheduled
// for deletion when the test ends, and returns its ARN.
func newTestKey(t *testing.T, api *kms.Client, spec types.KeySpec) string {
	t.Helper()
	out, err := api.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("CreateKey %s: %v", spec, err)
	}
	id := aws.ToString(out.KeyMetadata.Arn)
	t.Cleanup(func() {
		_, _ = api.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	})
	return id
}

// TestIntegrationKMSSigner: RSA_2048 and ECC_NIST_P256 keys in KMS sign digests
// as RS256, PS256 and ES256 need them, through an alias too, and the signatures
// verify with the public key KMS gives.
func TestIntegrationKMSSigner(t *testing.T) {
	cfg := awstest.Config(t)
	api := kms.NewFromConfig(cfg)
	ctx := context.Background()
	rsaKey, ecKey := newTestKey(t, api, types.KeySpecRsa2048), newTestKey(t, api, types.KeySpecEccNistP256)
	alias := "alias/" + awstest.UniqueName("kmssign-it-")
	if _, err := api.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(ecKey)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = api.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: aws.String(alias)})
	})
	digest := sha256.Sum256([]byte("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpZCJ9"))
	for _, tt := range []struct {
		name, key string
		opts      crypto.SignerOpts
	}{
		{"RS256", rsaKey, crypto.SHA256},
		{"PS256", rsaKey, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}},
		{"ES256", ecKey, crypto.SHA256},
		{"ES256 by alias", alias, crypto.SHA256},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Keys{API: api}.Signer(ctx, tt.key)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			sig, err := s.Sign(rand.Reader, digest[:], tt.opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			var ok bool
			switch pub := s.Public().(type) {
			case *rsa.PublicKey:
				if _, pss := tt.opts.(*rsa.PSSOptions); pss {
					// PS256 wants a salt as long as the hash (RFC 7518 §3.5).
					ok = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
				} else {
					ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
				}
			case *ecdsa.PublicKey:
				ok = ecdsa.VerifyASN1(pub, digest[:], sig)
			}
			if !ok {
				t.Errorf("the %s signature does not verify with KMS's public key", tt.name)
			}
		})
	}
}
