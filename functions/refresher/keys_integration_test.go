//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// TestIntegrationKeyMethods runs the function as main wires it, configured only
// by a registry file, with every client credential in LocalStack's Secrets
// Manager and two signing keys in its KMS, against a token endpoint that verifies
// each assertion with the registered public key (KMS's own for the KMS keys) and
// each client certificate: a PEM private_key_jwt provider, a tls_client_auth
// provider, and RS256 and ES256 providers signing in KMS. All are rotated; a PEM
// key rotated in Secrets Manager before the partner knows it falls back to
// AWSPREVIOUS; no form of the keys, of an assertion or of its signature appears
// in the result, the logs or the metrics.
func TestIntegrationKeyMethods(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	sm, kc := secretsmanager.NewFromConfig(cfg), kms.NewFromConfig(cfg)
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	base := awstest.Secrets(t, cfg, "keys-it-")
	prefix := awstest.Parameters(t, cfg, "keys-it-") + "/tokens"

	putSecret := func(id string, v map[string]string) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(b))}); err == nil {
			return
		}
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(string(b))}); err != nil {
			t.Fatal(err)
		}
	}
	kmsKey := func(spec types.KeySpec) (string, any) {
		t.Helper()
		out, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatalf("CreateKey %s: %v", spec, err)
		}
		id := aws.ToString(out.KeyMetadata.Arn)
		t.Cleanup(func() {
			_, _ = kc.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		})
		pub, err := kc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.ParsePKIXPublicKey(pub.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return id, key
	}

	ec := oauthtest.NewECKey()
	pemKey := oauthtest.KeyPEM(ec, oauthtest.SEC1)
	mtlsKey := oauthtest.NewRSAKey(2048)
	cert, certPEM := oauthtest.SelfSigned(mtlsKey, "token-refresher-it", time.Hour)
	mtlsPEM := oauthtest.KeyPEM(mtlsKey, oauthtest.PKCS1)
	rsaID, rsaPub := kmsKey(types.KeySpecRsa2048)
	ecID, ecPub := kmsKey(types.KeySpecEccNistP256)
	alias := "alias/" + awstest.UniqueName("keys-it-")
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(rsaID)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = kc.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: aws.String(alias)})
	})

	srv.Add(oauthtest.KeyClient{ID: "id-pem", Method: oauth.PrivateKeyJWT, PublicKey: ec.Public()})
	srv.Add(oauthtest.KeyClient{ID: "id-mtls", Method: oauth.TLSClientAuth, Certificate: cert})
	srv.Add(oauthtest.KeyClient{ID: "id-kms-rsa", Method: oauth.PrivateKeyJWT, PublicKey: rsaPub})
	srv.Add(oauthtest.KeyClient{ID: "id-kms-ec", Method: oauth.PrivateKeyJWT, PublicKey: ecPub})
	putSecret(base+"pem", map[string]string{"client_id": "id-pem", "private_key": pemKey, "certificate": certPEM})
	putSecret(base+"mtls", map[string]string{"client_id": "id-mtls", "certificate": certPEM, "private_key": mtlsPEM})
	putSecret(base+"kms-rsa", map[string]string{"client_id": "id-kms-rsa"})
	putSecret(base+"kms-ec", map[string]string{"client_id": "id-kms-ec"})

	u := srv.TokenURL()
	doc := "providers:\n" +
		registry.EntryYAML("pem", base+"pem", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.PrivateKeyJWT, KeyID: "pem-1"}) +
		registry.EntryYAML("mtls", base+"mtls", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.TLSClientAuth}) +
		registry.EntryYAML("kms-rsa", base+"kms-rsa", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.PrivateKeyJWT}) +
		"    signing_key: kms:" + alias + "\n" +
		registry.EntryYAML("kms-ec", base+"kms-ec", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.PrivateKeyJWT, SigningAlg: oauth.ES256}) +
		"    signing_key: kms:" + ecID + "\n"
	h, logs, metrics := handlerFor(t, cfg, doc, prefix)
	// As main wires it, but trusting the test server's certificate.
	h.Refresher.Client = &oauth.Client{UserAgent: "token-refresher", HTTPClient: srv.Client(), InitialBackoff: time.Millisecond}

	rotate := func(providers ...string) map[string]refresher.Outcome {
		t.Helper()
		ev, _ := json.Marshal(map[string]any{"action": "rotate", "providers": providers})
		res, err := h.Handle(ctx, ev)
		if err != nil {
			t.Fatalf("rotate %v: %v (%+v)", providers, err, res)
		}
		b, _ := json.Marshal(res)
		for _, f := range leakForms(srv, pemKey, mtlsPEM) {
			for where, text := range map[string]string{"result": string(b), "logs": logs.String(), "metrics": metrics.String()} {
				if strings.Contains(text, f) {
					t.Fatalf("the %s hold a key, an assertion or a signature (%.24q…)", where, f)
				}
			}
		}
		return byProvider(res)
	}

	got := rotate("*")
	for _, name := range []string{"pem", "mtls", "kms-rsa", "kms-ec"} {
		if o := got[name]; o.Status != refresher.StatusRefreshed {
			t.Errorf("%s: got %s (%s), want refreshed", name, o.Status, o.Error)
		}
	}
	algs := map[string]any{}
	for _, s := range srv.Seen() {
		if s.Refused != "" {
			t.Errorf("the server refused %s: %s", s.Form.Get("client_id"), s.Refused)
		}
		algs[s.Form.Get("client_id")] = s.Header["alg"]
	}
	if algs["id-kms-rsa"] != "RS256" || algs["id-kms-ec"] != "ES256" || algs["id-pem"] != "ES256" {
		t.Errorf("got algorithms %v, want RS256 and ES256 from KMS, ES256 from the PEM key", algs)
	}

	// The PEM key is rotated in Secrets Manager before the partner knows the new
	// one: the previous version is used, and says so.
	putSecret(base+"pem", map[string]string{"client_id": "id-pem", "private_key": oauthtest.KeyPEM(oauthtest.NewECKey(), oauthtest.PKCS8)})
	got = rotate("pem")
	if o := got["pem"]; o.Status != refresher.StatusRefreshed || !strings.Contains(o.Note, "AWSPREVIOUS") {
		t.Errorf("pem after rotation: got %s %q, want refreshed on AWSPREVIOUS", o.Status, o.Note+o.Error)
	}
}

// leakForms is every form of the keys, and every assertion the server received
// with its signature, that must not appear in any output.
func leakForms(srv *oauthtest.KeyServer, keys ...string) []string {
	var out []string
	for _, k := range keys {
		for _, f := range oauthtest.KeyForms(k) {
			if len(f) >= 16 {
				out = append(out, f)
			}
		}
	}
	for _, s := range srv.Seen() {
		if a := s.Form.Get("client_assertion"); a != "" {
			out = append(out, a, a[strings.LastIndexByte(a, '.')+1:])
		}
	}
	return out
}

// handlerFor is the handler as main wires it for the registry doc, its tokens
// under prefix and its state beside them, logging and writing metrics into the
// buffers it returns.
func handlerFor(t *testing.T, cfg aws.Config, doc, prefix string) (*refresher.Handler, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	regFile := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(regFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := loadEnv(func(k string) string {
		return map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": prefix,
			"STATE_PARAMETER_PREFIX": strings.TrimSuffix(prefix, "/tokens") + "/state"}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs, metrics bytes.Buffer
	return newHandler(cfg, e, slog.New(slog.NewJSONHandler(&logs, nil)), &metrics), &logs, &metrics
}
