package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJWKSCommand prints the JWKS of PEM keys in each form, with a certificate's
// x5c and thumbprints, and never anything of the private key.
func TestJWKSCommand(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "partner-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := writePEM(t, dir, "cert.pem", "CERTIFICATE", certDER)
	pkcs1 := writePEM(t, dir, "rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	ec8 := writePEM(t, dir, "ec8.pem", "PRIVATE KEY", pkcs8)
	ec1 := writePEM(t, dir, "ec1.pem", "EC PRIVATE KEY", sec1)
	s256 := sha256.Sum256(certDER)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     map[string]string
		wantErr  string
	}{
		{name: "RSA PKCS#1", args: []string{"-key", pkcs1}, want: map[string]string{"kty": "RSA", "alg": "RS256", "use": "sig"}},
		{name: "RSA with PS256 and a kid", args: []string{"-key", pkcs1, "-alg", "PS256", "-kid", "okta-1"}, want: map[string]string{"alg": "PS256", "kid": "okta-1"}},
		{name: "EC PKCS#8 with its certificate", args: []string{"-key", ec8, "-cert", cert}, want: map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])}},
		{name: "EC SEC1", args: []string{"-key", ec1}, want: map[string]string{"kty": "EC"}},
		{name: "the certificate alone", args: []string{"-key", cert}, want: map[string]string{"kty": "EC"}},
		{name: "a certificate of another key", args: []string{"-key", pkcs1, "-cert", cert}, wantCode: exitUsage, wantErr: "not the key's"},
		{name: "an alg that does not fit", args: []string{"-key", ec8, "-alg", "RS256"}, wantCode: exitUsage, wantErr: "does not fit"},
		{name: "neither -kms nor -key", args: nil, wantCode: exitUsage, wantErr: "usage"},
		{name: "both -kms and -key", args: []string{"-kms", "alias/x", "-key", ec8}, wantCode: exitUsage, wantErr: "usage"},
	}
	ecRaw, err := ecKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{string(pemBytes(t, pkcs1)), string(pemBytes(t, ec8)),
		base64.RawURLEncoding.EncodeToString(rsaKey.D.Bytes()), base64.RawURLEncoding.EncodeToString(ecRaw)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"jwks"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("got exit %d (%s), want %d", code, stderr.String(), tt.wantCode)
			}
			for _, s := range secrets {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Fatal("got the private key in the output")
				}
			}
			if tt.wantErr != "" {
				if !strings.Contains(stderr.String(), tt.wantErr) {
					t.Errorf("got stderr %q, want it to say %q", stderr.String(), tt.wantErr)
				}
				return
			}
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(stdout.Bytes(), &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("got %q (%v), want a JWKS of one key", stdout.String(), err)
			}
			k := set.Keys[0]
			for field, want := range tt.want {
				if got := k[field]; got != want {
					t.Errorf("got %s %v, want %s", field, got, want)
				}
			}
			if _, ok := k["d"]; ok {
				t.Error("got a private member d in the JWK")
			}
		})
	}
}

func pemBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fakeKMS struct{ out *kms.GetPublicKeyOutput }

func (f fakeKMS) GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	return f.out, nil
}

// TestKMSPublicKey refuses a KMS key that cannot sign.
func TestKMSPublicKey(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(ecKey.Public())
	if _, err := kmsPublicKey(context.Background(), fakeKMS{&kms.GetPublicKeyOutput{PublicKey: der, KeyUsage: types.KeyUsageTypeSignVerify}}, "k"); err != nil {
		t.Errorf("got %v for a signing key, want nil", err)
	}
	_, err := kmsPublicKey(context.Background(), fakeKMS{&kms.GetPublicKeyOutput{PublicKey: der, KeyUsage: types.KeyUsageTypeEncryptDecrypt}}, "k")
	if err == nil || !strings.Contains(err.Error(), "SIGN_VERIFY") {
		t.Errorf("got %v for an encryption key, want a refusal naming SIGN_VERIFY", err)
	}
}
