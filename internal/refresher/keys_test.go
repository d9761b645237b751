package refresher

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
)

// fakeKeys stands in for KMS: keys by id, and the ids asked for.
type fakeKeys struct {
	mu    sync.Mutex
	keys  map[string]crypto.Signer
	asked []string
}

func (f *fakeKeys) Signer(_ context.Context, id string) (crypto.Signer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	k, ok := f.keys[id]
	if !ok {
		return nil, fmt.Errorf("NotFoundException: key %s does not exist", id)
	}
	return k, nil
}

// keyWorld is one provider per method that needs no shared secret, at a server
// that verifies assertions and certificates.
type keyWorld struct {
	srv     *oauthtest.KeyServer
	secrets *fakeSecrets
	store   *fakeStore
	keys    *fakeKeys
}

const hmacSecret = "a-client-secret-of-at-least-32-bytes!"

func newKeyWorld(t *testing.T) *keyWorld {
	t.Helper()
	w := &keyWorld{srv: oauthtest.NewKeyServer(), secrets: newFakeSecrets(), store: newFakeStore(), keys: &fakeKeys{keys: map[string]crypto.Signer{}}}
	t.Cleanup(w.srv.Close)
	ec, rsaKey := oauthtest.NewECKey(), oauthtest.NewRSAKey(2048)
	cert, certPEM := oauthtest.SelfSigned(ec, "mtls", time.Hour)
	w.keys.keys["alias/a"] = rsaKey
	w.srv.Add(oauthtest.KeyClient{ID: "id-pem", Method: oauth.PrivateKeyJWT, PublicKey: ec.Public()})
	w.srv.Add(oauthtest.KeyClient{ID: "id-kms", Method: oauth.PrivateKeyJWT, PublicKey: rsaKey.Public()})
	w.srv.Add(oauthtest.KeyClient{ID: "id-hmac", Method: oauth.ClientSecretJWT, Secret: hmacSecret})
	w.srv.Add(oauthtest.KeyClient{ID: "id-mtls", Method: oauth.TLSClientAuth, Certificate: cert})
	w.secrets.current["s/pem"] = secrets.Secret{ClientID: "id-pem", PrivateKey: oauthtest.KeyPEM(ec, oauthtest.SEC1), VersionID: "v1"}
	w.secrets.current["s/kms"] = secrets.Secret{ClientID: "id-kms", VersionID: "v1"}
	w.secrets.current["s/hmac"] = secrets.Secret{ClientID: "id-hmac", ClientSecret: hmacSecret, VersionID: "v1"}
	w.secrets.current["s/mtls"] = secrets.Secret{ClientID: "id-mtls", Certificate: certPEM, PrivateKey: oauthtest.KeyPEM(ec, oauthtest.PKCS8), VersionID: "v1"}
	return w
}

func (w *keyWorld) refresher(t *testing.T, kmsKey string) *Refresher {
	t.Helper()
	u := w.srv.TokenURL()
	doc := "providers:\n" +
		registry.EntryYAML("pem", "s/pem", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.PrivateKeyJWT, SigningAlg: oauth.ES256}) +
		registry.EntryYAML("kms", "s/kms", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.PrivateKeyJWT, KeyID: "k1"}) +
		"    signing_key: kms:" + kmsKey + "\n" +
		registry.EntryYAML("hmac", "s/hmac", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.ClientSecretJWT}) +
		registry.EntryYAML("mtls", "s/mtls", oauth.Endpoint{TokenURL: u, AuthMethod: oauth.TLSClientAuth})
	reg, err := registry.Load(strings.NewReader(doc), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := fastClient()
	c.HTTPClient = w.srv.Client()
	return &Refresher{Providers: reg, Secrets: w.secrets, Store: w.store, Client: c, Keys: w.keys}
}

// TestRunKeyMethods: rotate works for every method, a refused PEM key or
// certificate falls back to AWSPREVIOUS, a changed signing_key signs the next
// refresh, and a KMS key that cannot be read fails only its provider.
func TestRunKeyMethods(t *testing.T) {
	w := newKeyWorld(t)
	ctx := context.Background()
	res, err := w.refresher(t, "alias/a").Run(ctx, Request{Action: ActionRotate, Providers: []string{"*"}})
	if err != nil {
		t.Fatalf("rotate all: %v %+v", err, res)
	}
	for _, o := range res.Results {
		if o.Status != StatusRefreshed {
			t.Errorf("%s: got %s (%s), want refreshed", o.Provider, o.Status, o.Error)
		}
	}

	// The PEM key and the certificate are rotated in Secrets Manager before the
	// partner knows the new ones: the previous version still works.
	for _, id := range []string{"s/pem", "s/mtls"} {
		w.secrets.previous[id] = w.secrets.current[id]
	}
	other := oauthtest.NewECKey()
	_, otherCert := oauthtest.SelfSigned(other, "new", time.Hour)
	pem := w.secrets.current["s/pem"]
	pem.PrivateKey, pem.VersionID = oauthtest.KeyPEM(other, oauthtest.PKCS8), "v2"
	w.secrets.current["s/pem"] = pem
	mtls := w.secrets.current["s/mtls"]
	mtls.Certificate, mtls.PrivateKey, mtls.VersionID = otherCert, oauthtest.KeyPEM(other, oauthtest.SEC1), "v2"
	w.secrets.current["s/mtls"] = mtls
	res, err = w.refresher(t, "alias/a").Run(ctx, Request{Action: ActionRotate, Providers: []string{"pem", "mtls"}})
	if err != nil {
		t.Fatalf("rotate after the key change: %v %+v", err, res)
	}
	for _, o := range res.Results {
		if o.Status != StatusRefreshed || !strings.Contains(o.Note, "AWSPREVIOUS") {
			t.Errorf("%s: got %s %q, want refreshed with the AWSPREVIOUS note", o.Provider, o.Status, o.Note+o.Error)
		}
		if v := w.store.tokens[param(o.Provider)].SecretVersion; v != "v1" {
			t.Errorf("%s: published with secret version %q, want the previous v1", o.Provider, v)
		}
	}

	// signing_key moves to another key, which the partner knows: the next
	// rotation signs with it.
	next := oauthtest.NewECKey()
	w.keys.keys["alias/b"] = next
	w.srv.Add(oauthtest.KeyClient{ID: "id-kms", Method: oauth.PrivateKeyJWT, PublicKey: next.Public()})
	res, err = w.refresher(t, "alias/b").Run(ctx, Request{Action: ActionRotate, Providers: []string{"kms"}})
	if err != nil || res.Results[0].Status != StatusRefreshed {
		t.Fatalf("after the signing_key change: %v %+v", err, res)
	}
	seen := w.srv.Seen()
	if last := seen[len(seen)-1]; last.Header["alg"] != "ES256" || last.Header["kid"] != "k1" {
		t.Errorf("got header %v, want ES256 from the new key, kid k1", last.Header)
	}
	if got := w.keys.asked[len(w.keys.asked)-1]; got != "alias/b" {
		t.Errorf("got key %q asked for, want alias/b", got)
	}

	// A key KMS does not know fails its provider with KMS's reason.
	res, err = w.refresher(t, "alias/gone").Run(ctx, Request{Action: ActionRotate, Providers: []string{"*"}})
	if err == nil {
		t.Fatal("no error with a missing KMS key")
	}
	for _, o := range res.Results {
		want := StatusRefreshed
		if o.Provider == "kms" {
			want = StatusFailed
			if !strings.Contains(o.Error, "signing_key kms:alias/gone") || !strings.Contains(o.Error, "NotFoundException") {
				t.Errorf("kms: got error %q, want the key and KMS's reason", o.Error)
			}
		}
		if o.Status != want {
			t.Errorf("%s: got %s (%s), want %s", o.Provider, o.Status, o.Error, want)
		}
	}
}
