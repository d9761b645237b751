//go:build integration

package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

// TestIntegrationJWKSFromKMS prints the JWKS of LocalStack KMS keys, RSA and EC,
// whose public keys are the ones KMS verifies with.
func TestIntegrationJWKSFromKMS(t *testing.T) {
	cfg := awstest.Config(t)
	api := kms.NewFromConfig(cfg)
	for _, tt := range []struct {
		spec    types.KeySpec
		wantAlg string
	}{{types.KeySpecRsa2048, "RS256"}, {types.KeySpecEccNistP256, "ES256"}} {
		t.Run(string(tt.spec), func(t *testing.T) {
			key, err := api.CreateKey(t.Context(), &kms.CreateKeyInput{KeySpec: tt.spec, KeyUsage: types.KeyUsageTypeSignVerify})
			if err != nil {
				t.Fatal(err)
			}
			id := aws.ToString(key.KeyMetadata.KeyId)
			t.Cleanup(func() {
				_, _ = api.ScheduleKeyDeletion(t.Context(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
			})
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), []string{"jwks", "-kms", id}, &stdout, &stderr); code != exitOK {
				t.Fatalf("got exit %d: %s", code, stderr.String())
			}
			var set struct{ Keys []map[string]string }
			if err := json.Unmarshal(stdout.Bytes(), &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("got %q (%v), want a JWKS of one key", stdout.String(), err)
			}
			k := set.Keys[0]
			if k["alg"] != tt.wantAlg {
				t.Errorf("got alg %s, want %s", k["alg"], tt.wantAlg)
			}
			pub, err := api.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			want, err := x509.ParsePKIXPublicKey(pub.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			b64 := func(s string) *big.Int {
				b, _ := base64.RawURLEncoding.DecodeString(s)
				return new(big.Int).SetBytes(b)
			}
			switch w := want.(type) {
			case *rsa.PublicKey:
				if b64(k["n"]).Cmp(w.N) != 0 || b64(k["e"]).Int64() != int64(w.E) {
					t.Error("got an RSA JWK that is not KMS's public key")
				}
			case *ecdsa.PublicKey:
				raw, _ := w.Bytes()
				if k["x"] != base64.RawURLEncoding.EncodeToString(raw[1:33]) || k["y"] != base64.RawURLEncoding.EncodeToString(raw[33:]) {
					t.Error("got an EC JWK that is not KMS's public key")
				}
			}
			// The JWK verifies what KMS signs: the key a partner registers is the right one.
			digest := sha256.Sum256([]byte("assertion"))
			alg := types.SigningAlgorithmSpecRsassaPkcs1V15Sha256
			if tt.spec == types.KeySpecEccNistP256 {
				alg = types.SigningAlgorithmSpecEcdsaSha256
			}
			sig, err := api.Sign(t.Context(), &kms.SignInput{KeyId: aws.String(id), Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			switch w := want.(type) {
			case *rsa.PublicKey:
				err = rsa.VerifyPKCS1v15(&rsa.PublicKey{N: b64(k["n"]), E: w.E}, crypto.SHA256, digest[:], sig.Signature)
			case *ecdsa.PublicKey:
				xb, _ := base64.RawURLEncoding.DecodeString(k["x"])
				yb, _ := base64.RawURLEncoding.DecodeString(k["y"])
				printed, err := ecdsa.ParseUncompressedPublicKey(w.Curve, append(append([]byte{4}, xb...), yb...))
				if err != nil {
					t.Fatalf("the printed EC key does not parse: %v", err)
				}
				if !ecdsa.VerifyASN1(printed, digest[:], sig.Signature) {
					t.Error("KMS's signature does not verify with the printed key")
				}
			}
			if err != nil {
				t.Errorf("KMS's signature does not verify with the printed key: %v", err)
			}
		})
	}
}
