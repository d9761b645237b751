package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
)

// Keys are slow to make: one of each kind for the whole package.
var (
	rsaKey = oauthtest.NewRSAKey(2048)
	ecKey  = oauthtest.NewECKey()
)

const hmacSecret = "a-client-secret-of-at-least-32-bytes!"

// keyClient returns a client of the key server and an Endpoint for it.
func keyClient(srv *oauthtest.KeyServer) *oauth.Client {
	c := fastClient()
	c.HTTPClient = srv.Client()
	return c
}

// TestAssertionClaimsAndHeader: each assertion method, key kind, PEM encoding and
// algorithm is accepted by a server that verifies the signature and the claim
// rules, and the header and claims are as RFC 7523 and the contract say.
func TestAssertionClaimsAndHeader(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	cert, certPEM := oauthtest.SelfSigned(rsaKey, "partner-client", time.Hour)
	for _, tt := range []struct {
		name     string
		method   oauth.AuthMethod
		key      crypto.Signer
		format   oauthtest.KeyFormat
		alg      oauth.SigningAlg
		wantAlg  string
		kid, aud string
		cert     string
		signer   bool // the key as an opaque crypto.Signer, as KMS is
	}{
		{name: "rsa-pkcs8-default", method: oauth.PrivateKeyJWT, key: rsaKey, format: oauthtest.PKCS8, wantAlg: "RS256"},
		{name: "rsa-pkcs1-rs256-kid", method: oauth.PrivateKeyJWT, key: rsaKey, format: oauthtest.PKCS1, alg: oauth.RS256, wantAlg: "RS256", kid: "key-1"},
		{name: "rsa-ps256", method: oauth.PrivateKeyJWT, key: rsaKey, format: oauthtest.PKCS8, alg: oauth.PS256, wantAlg: "PS256"},
		{name: "ec-sec1-default", method: oauth.PrivateKeyJWT, key: ecKey, format: oauthtest.SEC1, wantAlg: "ES256"},
		{name: "ec-pkcs8-es256-aud", method: oauth.PrivateKeyJWT, key: ecKey, format: oauthtest.PKCS8, alg: oauth.ES256, wantAlg: "ES256", aud: "https://issuer.example"},
		{name: "rsa-with-certificate", method: oauth.PrivateKeyJWT, key: rsaKey, format: oauthtest.PKCS8, wantAlg: "RS256", cert: certPEM},
		{name: "signer-rsa-ps256", method: oauth.PrivateKeyJWT, key: rsaKey, alg: oauth.PS256, wantAlg: "PS256", signer: true},
		{name: "signer-ec", method: oauth.PrivateKeyJWT, key: ecKey, wantAlg: "ES256", signer: true},
		{name: "client-secret-jwt", method: oauth.ClientSecretJWT, wantAlg: "HS256"},
		{name: "client-secret-jwt-hs256", method: oauth.ClientSecretJWT, alg: oauth.HS256, wantAlg: "HS256", kid: "k"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "client-" + tt.name
			kc := oauthtest.KeyClient{ID: id, Method: tt.method, Secret: hmacSecret, Audience: tt.aud}
			cred := oauth.Credentials{ClientID: id}
			if tt.method == oauth.ClientSecretJWT {
				cred.ClientSecret = hmacSecret
			} else {
				kc.PublicKey = tt.key.Public()
				if tt.signer {
					cred.Signer = opaque{tt.key}
				} else {
					cred.PrivateKey = oauthtest.KeyPEM(tt.key, tt.format)
				}
				cred.Certificate = tt.cert
			}
			srv.Add(kc)
			e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: tt.method, SigningAlg: tt.alg, KeyID: tt.kid, AssertionAudience: tt.aud}
			before := time.Now().Add(-time.Second)
			if _, err := keyClient(srv).Token(context.Background(), e, cred); err != nil {
				t.Fatalf("Token: %v", err)
			}
			seen := srv.Seen()
			got := seen[len(seen)-1]
			if got.Refused != "" {
				t.Fatalf("the server refused: %s", got.Refused)
			}
			if got.Header["alg"] != tt.wantAlg {
				t.Errorf("got alg %v, want %s", got.Header["alg"], tt.wantAlg)
			}
			if got.Header["kid"] != tt.kid {
				t.Errorf("got kid %q, want %q", got.Header["kid"], tt.kid)
			}
			wantX5t := ""
			if tt.cert != "" {
				wantX5t = oauthtest.Thumbprint(cert)
			}
			if x, _ := got.Header["x5t#S256"].(string); x != wantX5t {
				t.Errorf("got x5t#S256 %q, want %q", x, wantX5t)
			}
			if _, has := got.Header["x5t"]; has != (tt.cert != "") {
				t.Errorf("got x5t present %v, want %v", has, tt.cert != "")
			}
			if got.Form.Get("client_id") != id || got.Form.Has("client_secret") {
				t.Errorf("got body fields %v, want client_id and no client_secret", keys(got.Form))
			}
			iat := time.Unix(int64(got.Claims["iat"].(float64)), 0)
			exp := time.Unix(int64(got.Claims["exp"].(float64)), 0)
			if iat.Before(before.Truncate(time.Second)) || exp.Sub(iat) > 5*time.Minute || exp.Sub(iat) <= 0 {
				t.Errorf("got iat %s exp %s, want iat now and exp at most 5 minutes later", iat, exp)
			}
		})
	}
}

func keys(v map[string][]string) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}

// opaque hides the key's type, as a KMS signer does: the client sees only a
// crypto.Signer, whose ECDSA signatures are ASN.1 DER.
type opaque struct{ k crypto.Signer }

func (o opaque) Public() crypto.PublicKey { return o.k.Public() }
func (o opaque) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, d, opts)
}

// TestAssertionFreshPerRequest: a retried request carries a new assertion with a
// new jti; the server would refuse a replayed one.
func TestAssertionFreshPerRequest(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	srv.Add(oauthtest.KeyClient{ID: "c", Method: oauth.PrivateKeyJWT, PublicKey: ecKey.Public()})
	cred := oauth.Credentials{ClientID: "c", PrivateKey: oauthtest.KeyPEM(ecKey, oauthtest.PKCS8)}
	e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.PrivateKeyJWT}
	c := keyClient(srv)
	for range 3 {
		if _, err := c.Token(context.Background(), e, cred); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	jtis := map[any]bool{}
	for _, s := range srv.Seen() {
		jtis[s.Claims["jti"]] = true
	}
	if len(jtis) != 3 {
		t.Errorf("got %d distinct jti in 3 requests, want 3", len(jtis))
	}
}

// TestJOSESignatureFromDER: an ECDSA signature a crypto.Signer returns in ASN.1 DER
// (as kms:Sign does) reaches the assertion in JOSE's r||s form, 64 bytes, which
// crypto/ecdsa verifies over the signing input.
func TestJOSESignatureFromDER(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	srv.Add(oauthtest.KeyClient{ID: "c", Method: oauth.PrivateKeyJWT, PublicKey: ecKey.Public()})
	rec := &derRecorder{k: ecKey}
	for i := range 20 { // r and s are sometimes shorter than 32 bytes: padding must hold
		e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.PrivateKeyJWT}
		if _, err := keyClient(srv).Token(context.Background(), e, oauth.Credentials{ClientID: "c", Signer: rec}); err != nil {
			t.Fatalf("Token %d: %v", i, err)
		}
		seen := srv.Seen()
		jws := seen[len(seen)-1].Form.Get("client_assertion")
		input, sigPart := jws[:strings.LastIndexByte(jws, '.')], jws[strings.LastIndexByte(jws, '.')+1:]
		sig, err := base64.RawURLEncoding.DecodeString(sigPart)
		if err != nil || len(sig) != 64 {
			t.Fatalf("got a signature of %d bytes (%v), want 64", len(sig), err)
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		digest := sha256.Sum256([]byte(input))
		if !ecdsa.Verify(&ecKey.PublicKey, digest[:], r, s) {
			t.Fatal("crypto/ecdsa does not verify the JOSE signature")
		}
		if der := rec.last(); !ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], der) {
			t.Fatal("the signer's DER signature is not over the same input")
		}
	}
}

type derRecorder struct {
	k   *ecdsa.PrivateKey
	mu  sync.Mutex
	der []byte
}

func (d *derRecorder) Public() crypto.PublicKey { return d.k.Public() }
func (d *derRecorder) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := d.k.Sign(r, digest, opts)
	d.mu.Lock()
	d.der = sig
	d.mu.Unlock()
	return sig, err
}
func (d *derRecorder) last() []byte { d.mu.Lock(); defer d.mu.Unlock(); return d.der }

// TestClientAuthRefusals: every combination that cannot authenticate fails with
// ErrClientAuth before any request is sent, naming what is missing or wrong.
func TestClientAuthRefusals(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	small := oauthtest.NewRSAKey(1024)
	_, certPEM := oauthtest.SelfSigned(ecKey, "c", time.Hour)
	rsaPEM, ecPEM := oauthtest.KeyPEM(rsaKey, oauthtest.PKCS8), oauthtest.KeyPEM(ecKey, oauthtest.SEC1)
	for _, tt := range []struct {
		name   string
		method oauth.AuthMethod
		alg    oauth.SigningAlg
		cred   oauth.Credentials
		want   string
	}{
		{"no key", oauth.PrivateKeyJWT, "", oauth.Credentials{ClientID: "c"}, "private_key"},
		{"ES256 with RSA", oauth.PrivateKeyJWT, oauth.ES256, oauth.Credentials{ClientID: "c", PrivateKey: rsaPEM}, "is an RSA key"},
		{"PS256 with EC", oauth.PrivateKeyJWT, oauth.PS256, oauth.Credentials{ClientID: "c", PrivateKey: ecPEM}, "is an EC P-256 key"},
		{"RS256 with EC signer", oauth.PrivateKeyJWT, oauth.RS256, oauth.Credentials{ClientID: "c", Signer: opaque{ecKey}}, "signing key is an EC"},
		{"small RSA", oauth.PrivateKeyJWT, "", oauth.Credentials{ClientID: "c", PrivateKey: oauthtest.KeyPEM(small, oauthtest.PKCS1)}, "1024 bits"},
		{"not PEM", oauth.PrivateKeyJWT, "", oauth.Credentials{ClientID: "c", PrivateKey: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}, "no PEM private key"},
		{"short HMAC secret", oauth.ClientSecretJWT, "", oauth.Credentials{ClientID: "c", ClientSecret: "short"}, "at least 32 bytes"},
		{"client_secret_jwt without secret", oauth.ClientSecretJWT, "", oauth.Credentials{ClientID: "c"}, "client_secret"},
		{"client_secret_jwt RS256", oauth.ClientSecretJWT, oauth.RS256, oauth.Credentials{ClientID: "c", ClientSecret: hmacSecret}, "HS256"},
		{"mTLS without certificate", oauth.TLSClientAuth, "", oauth.Credentials{ClientID: "c", PrivateKey: ecPEM}, "certificate"},
		{"mTLS without key", oauth.SelfSignedTLSClientAuth, "", oauth.Credentials{ClientID: "c", Certificate: certPEM}, "private_key"},
		{"mTLS key of another certificate", oauth.TLSClientAuth, "", oauth.Credentials{ClientID: "c", Certificate: certPEM, PrivateKey: rsaPEM}, "private_key"},
		{"no client_id", oauth.TLSClientAuth, "", oauth.Credentials{Certificate: certPEM, PrivateKey: ecPEM}, "client_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := len(srv.Seen())
			e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: tt.method, SigningAlg: tt.alg}
			_, err := keyClient(srv).Token(context.Background(), e, tt.cred)
			if !errors.Is(err, oauth.ErrClientAuth) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrClientAuth saying %q", err, tt.want)
			}
			if got := len(srv.Seen()) - n; got != 0 {
				t.Errorf("got %d requests, want none", got)
			}
		})
	}
}

// TestMutualTLS: both mTLS methods present the secret's certificate in the
// handshake and send client_id but no secret; two providers with different
// certificates through one Client each present their own, and a server that does
// not know the certificate refuses it.
func TestMutualTLS(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	type client struct {
		id     string
		method oauth.AuthMethod
		key    crypto.Signer
		format oauthtest.KeyFormat
		cert   *x509.Certificate
		pem    string
	}
	var clients []client
	for i, m := range []struct {
		method oauth.AuthMethod
		key    crypto.Signer
		format oauthtest.KeyFormat
	}{{oauth.TLSClientAuth, rsaKey, oauthtest.PKCS1}, {oauth.SelfSignedTLSClientAuth, ecKey, oauthtest.SEC1}, {oauth.TLSClientAuth, ecKey, oauthtest.PKCS8}} {
		id := string(m.method) + "-" + string(rune('a'+i))
		cert, p := oauthtest.SelfSigned(m.key, id, time.Hour)
		clients = append(clients, client{id, m.method, m.key, m.format, cert, p})
		srv.Add(oauthtest.KeyClient{ID: id, Method: m.method, Certificate: cert})
	}
	c := keyClient(srv) // one client for all, as the refresher has
	for round := range 2 {
		for _, cl := range clients {
			e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: cl.method}
			cred := oauth.Credentials{ClientID: cl.id, Certificate: cl.pem, PrivateKey: oauthtest.KeyPEM(cl.key, cl.format)}
			if _, err := c.Token(context.Background(), e, cred); err != nil {
				t.Fatalf("round %d, %s: %v", round, cl.id, err)
			}
			seen := srv.Seen()
			got := seen[len(seen)-1]
			if got.PeerSubject != cl.cert.Subject.String() || got.Form.Has("client_secret") || got.Form.Get("client_id") != cl.id {
				t.Errorf("%s: got certificate %q, fields %v; want %q, client_id and no secret", cl.id, got.PeerSubject, keys(got.Form), cl.cert.Subject)
			}
		}
	}
	// Another client's certificate is refused by the server, with its reason.
	e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.TLSClientAuth}
	wrong := oauth.Credentials{ClientID: clients[0].id, Certificate: clients[1].pem, PrivateKey: oauthtest.KeyPEM(ecKey, oauthtest.SEC1)}
	_, err := c.Token(context.Background(), e, wrong)
	var oe *oauth.Error
	if !errors.As(err, &oe) || !oe.CredentialsRejected() || !strings.Contains(oe.Description, "not the registered one") {
		t.Errorf("got %v, want the server's refusal of the certificate", err)
	}
}

// TestKeyMaterialNeverInErrors: a server that quotes the whole request body in its
// refusal, assertion included, leaves no form of the assertion, its signature or
// the signer's DER signature in the error; nor does an error while parsing or
// using the private key hold any form of it.
func TestKeyMaterialNeverInErrors(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	other := oauthtest.NewECKey()
	for _, tt := range []struct {
		name   string
		method oauth.AuthMethod
		cred   oauth.Credentials
	}{
		{"pem", oauth.PrivateKeyJWT, oauth.Credentials{ClientID: "echo-pem", PrivateKey: oauthtest.KeyPEM(ecKey, oauthtest.PKCS8)}},
		{"signer", oauth.PrivateKeyJWT, oauth.Credentials{ClientID: "echo-signer", Signer: &derRecorder{k: ecKey}}},
		{"hmac", oauth.ClientSecretJWT, oauth.Credentials{ClientID: "echo-hmac", ClientSecret: hmacSecret}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Registered with another key: every request is refused, with an echo.
			srv.Add(oauthtest.KeyClient{ID: tt.cred.ClientID, Method: tt.method, PublicKey: other.Public(), Secret: hmacSecret + "x", EchoRefusal: true})
			e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: tt.method}
			_, err := keyClient(srv).Token(context.Background(), e, tt.cred)
			if err == nil {
				t.Fatal("no error")
			}
			seen := srv.Seen()
			jws := seen[len(seen)-1].Form.Get("client_assertion")
			forms := []string{jws, jws[strings.LastIndexByte(jws, '.')+1:]}
			if r, ok := tt.cred.Signer.(*derRecorder); ok {
				forms = append(forms, base64.StdEncoding.EncodeToString(r.last()))
			}
			for _, f := range forms {
				assertNoForm(t, "error", err.Error(), "", f)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("got %q, want the echo redacted", err)
			}
		})
	}
}

// TestKeyServerRefusesWrongKey: the fake server really verifies: an assertion
// signed with another key than the registered one is refused with its reason.
func TestKeyServerRefusesWrongKey(t *testing.T) {
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	srv.Add(oauthtest.KeyClient{ID: "c", Method: oauth.ClientSecretJWT, Secret: hmacSecret + "-other"})
	e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.ClientSecretJWT}
	_, err := keyClient(srv).Token(context.Background(), e, oauth.Credentials{ClientID: "c", ClientSecret: hmacSecret})
	var oe *oauth.Error
	if !errors.As(err, &oe) || !strings.Contains(oe.Description, "does not verify") {
		t.Errorf("got %v, want a refusal of the signature", err)
	}
}

// TestMutualTLSRefusedInHandshake: a server that verifies client certificates in
// the TLS handshake and refuses the one presented is reported as a refusal of the
// credentials (invalid_client), so the refresher tries the previous certificate;
// one it knows is accepted.
func TestMutualTLSRefusedInHandshake(t *testing.T) {
	known, knownPEM := oauthtest.SelfSigned(ecKey, "known", time.Hour)
	_, otherPEM := oauthtest.SelfSigned(rsaKey, "other", time.Hour)
	srv := oauthtest.NewKeyServer()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(known)
	srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	srv.Add(oauthtest.KeyClient{ID: "c", Method: oauth.TLSClientAuth, Certificate: known})
	e := oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.TLSClientAuth}
	_, err := keyClient(srv).Token(context.Background(), e, oauth.Credentials{ClientID: "c", Certificate: otherPEM, PrivateKey: oauthtest.KeyPEM(rsaKey, oauthtest.PKCS8)})
	var oe *oauth.Error
	if !errors.As(err, &oe) || !oe.CredentialsRejected() || !strings.Contains(err.Error(), "refused the client certificate") {
		t.Errorf("got %v, want a refusal of the credentials", err)
	}
	if _, err := keyClient(srv).Token(context.Background(), e, oauth.Credentials{ClientID: "c", Certificate: knownPEM, PrivateKey: oauthtest.KeyPEM(ecKey, oauthtest.SEC1)}); err != nil {
		t.Errorf("the known certificate: %v", err)
	}
}
