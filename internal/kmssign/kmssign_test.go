package kmssign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// fakeKMS signs as KMS does, with local keys: a DIGEST message, the algorithm named.
type fakeKMS struct {
	keys  map[string]crypto.Signer
	usage types.KeyUsageType
	calls []kms.SignInput
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	k, ok := f.keys[aws.ToString(in.KeyId)]
	if !ok {
		return nil, &types.NotFoundException{Message: aws.String("no such key")}
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	return &kms.GetPublicKeyOutput{KeyId: aws.String("arn:aws:kms:eu-west-1:123456789012:key/" + aws.ToString(in.KeyId)),
		PublicKey: der, KeyUsage: f.usage}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.calls = append(f.calls, *in)
	id := aws.ToString(in.KeyId)
	k := f.keys[id[len("arn:aws:kms:eu-west-1:123456789012:key/"):]]
	var opts crypto.SignerOpts = crypto.SHA256
	if in.SigningAlgorithm == types.SigningAlgorithmSpecRsassaPssSha256 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	sig, err := k.Sign(rand.Reader, in.Message, opts)
	return &kms.SignOutput{Signature: sig}, err
}

// TestSignerAlgorithms: each key kind and option signs with the KMS algorithm its
// JOSE algorithm needs, with MessageType DIGEST and the key's ARN, and the
// signature verifies with the public key KMS gave.
func TestSignerAlgorithms(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	api := &fakeKMS{keys: map[string]crypto.Signer{"rsa": rk, "ec": ek}, usage: types.KeyUsageTypeSignVerify}
	digest := sha256.Sum256([]byte("header.claims"))
	for _, tt := range []struct {
		key  string
		opts crypto.SignerOpts
		want types.SigningAlgorithmSpec
	}{
		{"rsa", crypto.SHA256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha256},
		{"rsa", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}, types.SigningAlgorithmSpecRsassaPssSha256},
		{"ec", crypto.SHA256, types.SigningAlgorithmSpecEcdsaSha256},
	} {
		s, err := Keys{API: api}.Signer(context.Background(), tt.key)
		if err != nil {
			t.Fatalf("Signer(%s): %v", tt.key, err)
		}
		sig, err := s.Sign(rand.Reader, digest[:], tt.opts)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		in := api.calls[len(api.calls)-1]
		if in.SigningAlgorithm != tt.want || in.MessageType != types.MessageTypeDigest {
			t.Errorf("%s: got %s %s, want %s DIGEST", tt.key, in.SigningAlgorithm, in.MessageType, tt.want)
		}
		var ok bool
		switch pub := s.Public().(type) {
		case *rsa.PublicKey:
			if tt.want == types.SigningAlgorithmSpecRsassaPssSha256 {
				ok = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
			} else {
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
			}
		case *ecdsa.PublicKey:
			ok = ecdsa.VerifyASN1(pub, digest[:], sig)
		}
		if !ok {
			t.Errorf("%s %s: the signature does not verify", tt.key, tt.want)
		}
	}
}

// TestSignerRefusals: a key that does not exist, one for encryption, and a digest
// other than SHA-256 fail with the reason.
func TestSignerRefusals(t *testing.T) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	api := &fakeKMS{keys: map[string]crypto.Signer{"ec": ek}, usage: types.KeyUsageTypeEncryptDecrypt}
	if _, err := (Keys{API: api}).Signer(context.Background(), "nope"); !errors.As(err, new(*types.NotFoundException)) {
		t.Errorf("missing key: got %v, want NotFoundException", err)
	}
	if _, err := (Keys{API: api}).Signer(context.Background(), "ec"); err == nil {
		t.Error("an ENCRYPT_DECRYPT key: got no error")
	}
	api.usage = types.KeyUsageTypeSignVerify
	s, err := Keys{API: api}.Signer(context.Background(), "ec")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(rand.Reader, make([]byte, 48), crypto.SHA384); err == nil {
		t.Error("SHA-384: got no error")
	}
}
