package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// publicKeyGetter is the part of the KMS client jwks uses.
type publicKeyGetter interface {
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// jwks prints the JSON Web Key Set a partner registers for private_key_jwt (or
// self_signed_tls_client_auth): the public key of a KMS key or a PEM file, with
// kid, alg and, given a certificate, x5c, x5t#S256 and x5t. It never prints a
// private key: only the public half is ever read into the output.
func jwks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jwks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kmsKey := fs.String("kms", "", "an asymmetric KMS key: id, alias/NAME or ARN (kms:GetPublicKey)")
	keyFile := fs.String("key", "", "a PEM file: a private key (PKCS#8, PKCS#1, SEC1), a public key or a certificate")
	certFile := fs.String("cert", "", "a PEM certificate chain for the key, leaf first: adds x5c, x5t#S256 and x5t")
	kid := fs.String("kid", "", "the key id; default the key's RFC 7638 thumbprint")
	alg := fs.String("alg", "", "RS256, PS256 or ES256; default RS256 for RSA, ES256 for EC P-256")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || (*kmsKey == "") == (*keyFile == "") {
		fmt.Fprintln(stderr, "usage: tokenctl jwks (-kms KEY | -key FILE) [-cert FILE] [-kid KID] [-alg ALG]")
		return exitUsage
	}
	var pub crypto.PublicKey
	var err error
	if *kmsKey != "" {
		cfg, cerr := config.LoadDefaultConfig(ctx)
		if cerr != nil {
			fmt.Fprintf(stderr, "tokenctl jwks: %v\n", cerr)
			return exitUsage
		}
		pub, err = kmsPublicKey(ctx, kms.NewFromConfig(cfg), *kmsKey)
	} else {
		pub, err = pemPublicKey(*keyFile)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tokenctl jwks: %v\n", err)
		return exitUsage
	}
	var chain []*x509.Certificate
	if *certFile != "" {
		if chain, err = readChain(*certFile); err != nil {
			fmt.Fprintf(stderr, "tokenctl jwks: %v\n", err)
			return exitUsage
		}
	}
	key, err := oauth.PublicJWK(pub, *kid, oauth.SigningAlg(*alg), chain)
	if err != nil {
		fmt.Fprintf(stderr, "tokenctl jwks: %v\n", err)
		return exitUsage
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"keys": []any{key}}); err != nil {
		fmt.Fprintf(stderr, "tokenctl jwks: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// kmsPublicKey reads an asymmetric signing key's public half.
func kmsPublicKey(ctx context.Context, c publicKeyGetter, keyID string) (crypto.PublicKey, error) {
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, fmt.Errorf("kms:GetPublicKey %s: %w", keyID, err)
	}
	if out.KeyUsage != "SIGN_VERIFY" {
		return nil, fmt.Errorf("KMS key %s has key usage %s; private_key_jwt needs SIGN_VERIFY", keyID, out.KeyUsage)
	}
	return x509.ParsePKIXPublicKey(out.PublicKey)
}

// pemPublicKey reads the public key of the first key or certificate in a PEM file.
func pemPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no key or certificate in PEM form", path)
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: a PKCS#8 key that does not parse", path)
			}
			return publicOf(k)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: a PKCS#1 key that does not parse", path)
			}
			return k.Public(), nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: a SEC1 key that does not parse", path)
			}
			return k.Public(), nil
		case "PUBLIC KEY":
			return x509.ParsePKIXPublicKey(b.Bytes)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: a certificate that does not parse: %w", path, err)
			}
			return c.PublicKey, nil
		}
	}
}

func publicOf(k any) (crypto.PublicKey, error) {
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T key cannot sign", k)
	}
	return s.Public(), nil
}

func readChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	chain, err := oauth.ParseCertificates(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return chain, nil
}
