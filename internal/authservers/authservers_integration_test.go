//go:build integration

package authservers

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/discovery"
)

// assertion is a hand-rolled RFC 7523 client assertion, independent of the
// product's own signer, so that this test proves the server and not the client.
func assertion(t *testing.T, clientID, aud string, alg string, key any) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud,
		"jti": randomString(16), "iat": now, "exp": now + 300})
	input := b64(hdr) + "." + b64(claims)
	var sig []byte
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(pad32(r), pad32(s)...)
	default:
		t.Fatalf("key %T", key)
	}
	return input + "." + b64(sig)
}

func pad32(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }

// tokenRequest is the client-credentials grant with the given authentication.
type tokenRequest struct {
	id, secret string // client_secret_basic
	assertion  string
	cert       *tls.Certificate
}

func requestToken(ctx context.Context, srv *Server, endpoint string, r tokenRequest) (int, map[string]any, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
	if r.assertion != "" {
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", r.assertion)
	}
	if r.secret == "" {
		form.Set("client_id", r.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.secret != "" {
		req.SetBasicAuth(r.id, r.secret)
	}
	conf := srv.TLSConfig()
	if r.cert != nil {
		// Always present it: crypto/tls otherwise sends no certificate that is not
		// issued by a CA the server names, and a self-signed one never is.
		cert := r.cert
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer %q: %w", raw, err)
	}
	return resp.StatusCode, body, nil
}

// TestIntegrationOIDCProvider proves the oidc-provider harness: discovery finds
// its token endpoint and lists all four methods; each method, done by hand, gets a
// token that the server's introspection confirms; a wrong key or certificate is
// refused with the server's reason.
func TestIntegrationOIDCProvider(t *testing.T) {
	proveServer(t, StartOIDCProvider, quirks{}, []string{ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth})
}

// TestIntegrationAuthlib proves the Authlib harness the same way, for the methods
// Authlib has: client_secret_jwt and private_key_jwt.
func TestIntegrationAuthlib(t *testing.T) {
	proveServer(t, StartAuthlib, quirks{}, []string{ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT})
}

// TestIntegrationFosite proves the fosite harness the same way, for the method
// fosite has: private_key_jwt.
func TestIntegrationFosite(t *testing.T) {
	proveServer(t, StartFosite, quirks{}, []string{ClientSecretBasic, PrivateKeyJWT})
}

// TestIntegrationSpring proves the Spring Authorization Server harness the same
// way, for every method.
func TestIntegrationSpring(t *testing.T) {
	proveServer(t, StartSpring, quirks{}, []string{ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth})
}

// TestIntegrationKeycloak proves the Keycloak harness the same way, for the
// methods Keycloak has: all but self_signed_tls_client_auth. Keycloak checks a
// certificate's chain in the TLS handshake, which a chain to no trusted CA ends,
// and refuses a client_secret_jwt assertion it cannot verify with
// unauthorized_client (JWTClientSecretAuthenticator, hard-coded), not RFC 6749's
// invalid_client.
func TestIntegrationKeycloak(t *testing.T) {
	proveServer(t, StartKeycloak, quirks{
		chainAtHandshake: true,
		reasons:          map[string]string{"client_secret_jwt with another secret": "unauthorized_client"},
	}, []string{ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth})
}

// TestIntegrationNimbus proves the harness around the Connect2id Nimbus OAuth 2.0
// SDK's server side the same way, for every method.
func TestIntegrationNimbus(t *testing.T) {
	proveServer(t, StartNimbus, quirks{}, []string{ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth})
}

type starter func(context.Context, *PKI, []Client, string) (*Server, error)

// quirks are where a server departs from what proveServer wants of every server.
type quirks struct {
	// chainAtHandshake: the server checks a client certificate's chain to the
	// client CA in the TLS handshake, as a TLS terminator does, and refuses one
	// that has none with a TLS alert rather than with invalid_client.
	chainAtHandshake bool
	// reasons are the errors the server refuses cases with (by name) instead of
	// invalid_client.
	reasons map[string]string
}

// proveServer proves a harness for methods.
func proveServer(t *testing.T, start starter, q quirks, methods []string) {
	ctx := t.Context()
	pki, err := NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	mtlsCert, err := pki.Client("mtls-client", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := pki.Client("someone-else", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	selfCert, err := pki.SelfSigned("self-signed-client")
	if err != nil {
		t.Fatal(err)
	}
	// A self-signed certificate with the registered subject: only the chain to the
	// client CA tells it from the real one.
	selfMTLS, err := pki.SelfSigned("mtls-client")
	if err != nil {
		t.Fatal(err)
	}
	// A chain to another CA, with the registered subject.
	otherCA, err := NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherCA.Client("mtls-client", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignChain := tls.Certificate{Certificate: [][]byte{foreign.Cert.Raw, otherCA.ca.Raw}, PrivateKey: foreign.Key}
	unregistered, err := pki.SelfSigned("self-signed-client")
	if err != nil {
		t.Fatal(err)
	}
	jwtKey, err := pki.SelfSigned("jwt-client")
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := pki.SelfSigned("jwt-client")
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(kp *KeyPair, kid string) []map[string]any {
		k, err := kp.JWK(kid)
		if err != nil {
			t.Fatal(err)
		}
		return []map[string]any{k}
	}
	hsSecret := randomString(32)
	basicSecret := randomString(32)
	var clients []Client
	for _, c := range []Client{
		{ID: "basic", Method: ClientSecretBasic, Secret: basicSecret},
		{ID: "hs", Method: ClientSecretJWT, Secret: hsSecret},
		{ID: "pk", Method: PrivateKeyJWT, JWKS: jwk(jwtKey, "pk-1")},
		{ID: "mtls", Method: TLSClientAuth, SubjectDN: "CN=mtls-client"},
		{ID: "selfsigned", Method: SelfSignedTLSClientAuth, JWKS: jwk(selfCert, "ss-1")},
	} {
		if slices.Contains(methods, c.Method) {
			clients = append(clients, c)
		}
	}
	srv, err := start(ctx, pki, clients, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		if t.Failed() {
			t.Logf("the server's log:\n%s", srv.Log())
		}
	})

	md, err := (&discovery.Fetcher{HTTPClient: srv.HTTPClient}).Discover(ctx, srv.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	for _, m := range methods {
		if err := md.Supports(m); err != nil {
			t.Errorf("discovery: %v", err)
		}
	}
	var doc struct {
		Introspection string `json:"introspection_endpoint"`
	}
	resp, err := srv.HTTPClient.Get(md.Source)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	token := md.TokenEndpoint.String()
	mtlsToken := md.TokenURL(true).String()

	tests := []struct {
		method, name, client, endpoint string
		req                            tokenRequest
		wantReason                     string // "" means a token is wanted
		untrusted                      bool   // a certificate with no chain to the client CA
	}{
		{ClientSecretBasic, "client_secret_basic", "basic", token, tokenRequest{id: "basic", secret: basicSecret}, "", false},
		{ClientSecretJWT, "client_secret_jwt", "hs", token, tokenRequest{id: "hs", assertion: assertion(t, "hs", token, "HS256", []byte(hsSecret))}, "", false},
		{PrivateKeyJWT, "private_key_jwt", "pk", token, tokenRequest{id: "pk", assertion: assertion(t, "pk", token, "ES256", jwtKey.Key.(*ecdsa.PrivateKey))}, "", false},
		{TLSClientAuth, "tls_client_auth", "mtls", mtlsToken, tokenRequest{id: "mtls", cert: &mtlsCert.TLS}, "", false},
		{SelfSignedTLSClientAuth, "self_signed_tls_client_auth", "selfsigned", mtlsToken, tokenRequest{id: "selfsigned", cert: &selfCert.TLS}, "", false},
		{ClientSecretJWT, "client_secret_jwt with another secret", "hs", token, tokenRequest{id: "hs", assertion: assertion(t, "hs", token, "HS256", []byte("not the secret"))}, "invalid_client", false},
		{PrivateKeyJWT, "private_key_jwt with another key", "pk", token, tokenRequest{id: "pk", assertion: assertion(t, "pk", token, "ES256", wrongKey.Key.(*ecdsa.PrivateKey))}, "invalid_client", false},
		{TLSClientAuth, "tls_client_auth with another subject", "mtls", mtlsToken, tokenRequest{id: "mtls", cert: &otherCert.TLS}, "invalid_client", false},
		{TLSClientAuth, "tls_client_auth with a self-signed certificate of the registered subject", "mtls", mtlsToken, tokenRequest{id: "mtls", cert: &selfMTLS.TLS}, "invalid_client", true},
		{TLSClientAuth, "tls_client_auth with a chain to another CA", "mtls", mtlsToken, tokenRequest{id: "mtls", cert: &foreignChain}, "invalid_client", true},
		{TLSClientAuth, "tls_client_auth without a certificate", "mtls", mtlsToken, tokenRequest{id: "mtls"}, "invalid_client", false},
		{SelfSignedTLSClientAuth, "self_signed_tls_client_auth with an unregistered certificate", "selfsigned", mtlsToken, tokenRequest{id: "selfsigned", cert: &unregistered.TLS}, "invalid_client", false},
	}
	for _, tt := range tests {
		if !slices.Contains(methods, tt.method) {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := requestToken(ctx, srv, tt.endpoint, tt.req)
			if tt.untrusted && q.chainAtHandshake {
				// crypto/tls reports the server's alert as a net.OpError "remote error".
				var op *net.OpError
				if !errors.As(err, &op) || op.Op != "remote error" {
					t.Fatalf("got %d %v, %v; want the handshake refused with a TLS alert", status, body, err)
				}
				return
			}
			if r, ok := q.reasons[tt.name]; ok {
				tt.wantReason = r
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantReason != "" {
				if status != http.StatusUnauthorized && status != http.StatusBadRequest || body["error"] != tt.wantReason {
					t.Fatalf("got %d %v, want a refusal with %s", status, body, tt.wantReason)
				}
				if _, ok := body["access_token"]; ok {
					t.Fatal("got an access token with a refusal")
				}
				return
			}
			at, _ := body["access_token"].(string)
			if status != http.StatusOK || at == "" {
				t.Fatalf("got %d %v, want a token", status, body)
			}
			in, err := srv.Introspect(ctx, doc.Introspection, at)
			if err != nil {
				t.Fatal(err)
			}
			if !in.Active || in.ClientID != tt.client || !slices.Contains(strings.Fields(in.Scope), "api") {
				t.Errorf("got introspection %+v, want active, client %s, scope api", in, tt.client)
			}
		})
	}
	if in, err := srv.Introspect(ctx, doc.Introspection, "not-a-token"); err != nil || in.Active {
		t.Errorf("got introspection %+v, %v for a token the server never issued, want inactive", in, err)
	}
}
