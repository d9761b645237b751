// Package kmssign signs with asymmetric AWS KMS keys through the standard
// crypto.Signer interface, so that a JOSE library signs client assertions with a
// key that never leaves KMS.
//
// A Signer reads the key's public half once (kms:GetPublicKey), to tell RSA from
// EC and to check the key's use, and signs each digest with kms:Sign, MessageType
// DIGEST: RSASSA_PKCS1_V1_5_SHA_256 for RS256, RSASSA_PSS_SHA_256 (its salt as long
// as the hash, as PS256 wants) for PS256, ECDSA_SHA_256 for ES256, whose signature
// KMS returns in ASN.1 DER, as crypto.Signer does.
package kmssign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// API is the part of the KMS client a Signer uses.
type API interface {
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// Keys makes Signers of KMS keys. Set API.
type Keys struct {
	API API
}

// Signer returns a crypto.Signer of the key keyID (a key id, alias/name or ARN),
// bound to ctx: its calls to KMS end with ctx. It reads the public key now, so a
// key that does not exist, cannot be read or does not sign fails here; nothing is
// kept across calls, so an alias moved to another key is followed at once.
func (k Keys) Signer(ctx context.Context, keyID string) (crypto.Signer, error) {
	out, err := k.API.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: read its public key: %w", keyID, err)
	}
	if out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("KMS key %s: its key usage is %s, not SIGN_VERIFY", keyID, out.KeyUsage)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: its public key: %w", keyID, err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return nil, fmt.Errorf("KMS key %s: a %s key, neither RSA nor ECC", keyID, out.KeySpec)
	}
	// The ARN, not the alias: the key read is the key that signs.
	return &signer{ctx: ctx, api: k.API, keyID: aws.ToString(out.KeyId), pub: pub}, nil
}

type signer struct {
	ctx   context.Context //nolint:containedctx // crypto.Signer's Sign takes none; bound at creation
	api   API
	keyID string
	pub   crypto.PublicKey
}

// Public returns the key's public half.
func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest with kms:Sign. For an RSA key, *rsa.PSSOptions
// selects PSS; anything else PKCS #1 v1.5.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("KMS key %s: only SHA-256 digests are signed, not %v", s.keyID, opts.HashFunc())
	}
	alg, err := algorithm(s.pub, opts)
	if err != nil {
		return nil, err
	}
	out, err := s.api.Sign(s.ctx, &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: alg,
	})
	if err != nil {
		return nil, fmt.Errorf("kms:Sign with %s: %w", s.keyID, err)
	}
	if len(out.Signature) == 0 {
		return nil, fmt.Errorf("kms:Sign with %s: %w", s.keyID, errors.New("no signature in the answer"))
	}
	return out.Signature, nil
}

func algorithm(pub crypto.PublicKey, opts crypto.SignerOpts) (types.SigningAlgorithmSpec, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		if _, pss := opts.(*rsa.PSSOptions); pss {
			return types.SigningAlgorithmSpecRsassaPssSha256, nil
		}
		return types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, nil
	case *ecdsa.PublicKey:
		return types.SigningAlgorithmSpecEcdsaSha256, nil
	}
	return "", fmt.Errorf("a %T key does not sign", pub)
}
