//go:build integration

package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/internal/authservers"
	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/kmssign"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// interopServer is one real authorization server, started with the clients the
// interop providers authenticate as.
type interopServer struct {
	name    string
	start   func(context.Context, *authservers.PKI, []authservers.Client, string) (*authservers.Server, error)
	methods []oauth.AuthMethod
}

// interopCase is one provider of the interop registry: a method against a server,
// with the secret it reads from Secrets Manager. wantReason "" wants a published
// token that the server's introspection confirms for client.
type interopCase struct {
	server, name, client string
	method               oauth.AuthMethod
	secret               map[string]string
	kmsKey               string           // signing_key: kms:<kmsKey>; the secret holds only client_id
	alg                  oauth.SigningAlg // signing_alg, when the case names one
	issuer               bool             // configured by issuer, the token endpoint discovered
	wantReason           string
	// refusedBy names a server that refuses the case for a reason of its own
	// (stated where the case is), with the reason its answer must hold.
	refusedBy map[string]string
}

// TestIntegrationInteropProviders runs the product's path as main wires it,
// against real authorization servers on loopback: a registry of one provider per
// server and method it supports (and, for private_key_jwt, keys in LocalStack's
// KMS: ES256, and PS256 and RS256 with one RSA key), each
// secret in Secrets Manager, one rotation of all, the tokens published to SSM and
// each confirmed by the server's introspection (active, its client_id). A wrong
// key or certificate fails its provider with the server's reason and publishes
// nothing; no key or assertion appears in the result or the logs.
func TestIntegrationInteropProviders(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := t.Context()
	sm, kc, sc := secretsmanager.NewFromConfig(cfg), kms.NewFromConfig(cfg), ssm.NewFromConfig(cfg)
	base := awstest.Secrets(t, cfg, "interop-it-")
	prefix := awstest.Parameters(t, cfg, "interop-it-") + "/tokens"

	pki, err := authservers.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	must := func(kp *authservers.KeyPair, err error) *authservers.KeyPair {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	mtlsCert := must(pki.Client("mtls-client", 24*time.Hour))
	otherCert := must(pki.Client("someone-else", 24*time.Hour))
	selfCert := must(pki.SelfSigned("self-signed-client"))
	unregistered := must(pki.SelfSigned("self-signed-client"))
	jwtKey := must(pki.SelfSigned("jwt-client"))
	wrongKey := must(pki.SelfSigned("jwt-client"))
	jwks := func(kp *authservers.KeyPair, kid string) []map[string]any {
		t.Helper()
		k, err := kp.JWK(kid)
		if err != nil {
			t.Fatal(err)
		}
		return []map[string]any{k}
	}

	// The KMS keys sign in LocalStack; a server knows a key's public half, read
	// with kms:GetPublicKey as tokenctl jwks reads it, and printed for the
	// algorithm the client signs with (tokenctl jwks -alg).
	kmsKey := func(spec kmstypes.KeySpec) (string, crypto.PublicKey) {
		t.Helper()
		out, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.KeyMetadata.Arn)
		t.Cleanup(func() {
			_, _ = kc.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		})
		s, err := kmssign.Keys{API: kc}.Signer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return id, s.Public()
	}
	kmsEC, ecPub := kmsKey(kmstypes.KeySpecEccNistP256)
	kmsRSA, rsaPub := kmsKey(kmstypes.KeySpecRsa2048)
	// A key no server knows: it signs, and the server cannot verify it.
	kmsUnknown, _ := kmsKey(kmstypes.KeySpecEccNistP256)

	basicSecret, hsSecret := interopRandom(t), interopRandom(t)
	clients := []authservers.Client{
		{ID: "basic", Method: authservers.ClientSecretBasic, Secret: basicSecret},
		{ID: "hs", Method: authservers.ClientSecretJWT, Secret: hsSecret},
		{ID: "pk", Method: authservers.PrivateKeyJWT, JWKS: jwks(jwtKey, "pk-1")},
		{ID: "kms", Method: authservers.PrivateKeyJWT, JWKS: []map[string]any{kmsJWK(t, ecPub, "kms-ec-1", oauth.ES256)}, SigningAlg: string(oauth.ES256)},
		// One RSA key, a client for each algorithm: fosite and Spring hold a client
		// to one.
		{ID: "kms-ps", Method: authservers.PrivateKeyJWT, JWKS: []map[string]any{kmsJWK(t, rsaPub, "kms-rsa-1", oauth.PS256)}, SigningAlg: string(oauth.PS256)},
		{ID: "kms-rs", Method: authservers.PrivateKeyJWT, JWKS: []map[string]any{kmsJWK(t, rsaPub, "kms-rsa-1", oauth.RS256)}, SigningAlg: string(oauth.RS256)},
		{ID: "mtls", Method: authservers.TLSClientAuth, SubjectDN: "CN=mtls-client"},
		{ID: "selfsigned", Method: authservers.SelfSignedTLSClientAuth, JWKS: jwks(selfCert, "ss-1")},
	}
	pem := func(kp *authservers.KeyPair) map[string]string {
		return map[string]string{"private_key": string(kp.KeyPEM)}
	}
	mtls := func(kp *authservers.KeyPair) map[string]string {
		return map[string]string{"private_key": string(kp.KeyPEM), "certificate": string(kp.CertPEM)}
	}
	servers := []interopServer{
		{"oidc-provider", authservers.StartOIDCProvider, []oauth.AuthMethod{oauth.ClientSecretBasic, oauth.ClientSecretJWT, oauth.PrivateKeyJWT, oauth.TLSClientAuth, oauth.SelfSignedTLSClientAuth}},
		{"authlib", authservers.StartAuthlib, []oauth.AuthMethod{oauth.ClientSecretJWT, oauth.PrivateKeyJWT}},
		{"fosite", authservers.StartFosite, []oauth.AuthMethod{oauth.PrivateKeyJWT}},
		{"spring", authservers.StartSpring, []oauth.AuthMethod{oauth.ClientSecretBasic, oauth.ClientSecretJWT, oauth.PrivateKeyJWT, oauth.TLSClientAuth, oauth.SelfSignedTLSClientAuth}},
		{"keycloak", authservers.StartKeycloak, []oauth.AuthMethod{oauth.ClientSecretBasic, oauth.ClientSecretJWT, oauth.PrivateKeyJWT, oauth.TLSClientAuth}},
		{"nimbus", authservers.StartNimbus, []oauth.AuthMethod{oauth.ClientSecretBasic, oauth.ClientSecretJWT, oauth.PrivateKeyJWT, oauth.TLSClientAuth, oauth.SelfSignedTLSClientAuth}},
	}
	perMethod := []interopCase{
		{name: "basic", client: "basic", method: oauth.ClientSecretBasic, secret: map[string]string{"client_secret": basicSecret}},
		{name: "hs", client: "hs", method: oauth.ClientSecretJWT, secret: map[string]string{"client_secret": hsSecret}},
		// Keycloak's JWTClientSecretAuthenticator answers an assertion it cannot
		// verify with unauthorized_client, hard-coded, where RFC 6749 says
		// invalid_client.
		{name: "hs-wrong-secret", client: "hs", method: oauth.ClientSecretJWT, secret: map[string]string{"client_secret": interopRandom(t)}, wantReason: "invalid_client", refusedBy: map[string]string{"keycloak": "unauthorized_client"}},
		{name: "pk", client: "pk", method: oauth.PrivateKeyJWT, secret: pem(jwtKey)},
		{name: "pk-wrong-key", client: "pk", method: oauth.PrivateKeyJWT, secret: pem(wrongKey), wantReason: "invalid_client"},
		{name: "kms-es256", client: "kms", method: oauth.PrivateKeyJWT, kmsKey: kmsEC, alg: oauth.ES256},
		// Authlib's RFC 7523 check (authlib/oauth2/rfc7523/client.py) calls joserfc's
		// jwt.decode without algorithms, so joserfc takes only the algorithms RFC 7518
		// §3.1 marks Required or Recommended; PS256 is Optional ("Algorithm of 'PS256'
		// is not recommended"). Authlib 1.9 has no setting for it.
		{name: "kms-ps256", client: "kms-ps", method: oauth.PrivateKeyJWT, kmsKey: kmsRSA, alg: oauth.PS256, refusedBy: map[string]string{"authlib": "invalid_client: Algorithm of 'PS256' is not recommended"}},
		{name: "kms-rs256", client: "kms-rs", method: oauth.PrivateKeyJWT, kmsKey: kmsRSA, alg: oauth.RS256},
		{name: "kms-unknown-key", client: "kms", method: oauth.PrivateKeyJWT, kmsKey: kmsUnknown, alg: oauth.ES256, wantReason: "invalid_client"},
		{name: "mtls", client: "mtls", method: oauth.TLSClientAuth, secret: mtls(mtlsCert)},
		{name: "mtls-wrong-cert", client: "mtls", method: oauth.TLSClientAuth, secret: mtls(otherCert), wantReason: "invalid_client"},
		{name: "selfsigned", client: "selfsigned", method: oauth.SelfSignedTLSClientAuth, secret: mtls(selfCert)},
		{name: "selfsigned-wrong-cert", client: "selfsigned", method: oauth.SelfSignedTLSClientAuth, secret: mtls(unregistered), wantReason: "invalid_client"},
	}

	type running struct {
		srv   *authservers.Server
		intro string
	}
	live := map[string]running{}
	var doc strings.Builder
	doc.WriteString("providers:\n")
	var cases []interopCase
	for _, s := range servers {
		var own []authservers.Client
		for _, c := range clients {
			if containsMethod(s.methods, oauth.AuthMethod(c.Method)) {
				own = append(own, c)
			}
		}
		srv, err := s.start(ctx, pki, own, t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Cleanup(func() {
			_ = srv.Close()
			if t.Failed() {
				t.Logf("%s's log:\n%s", s.name, srv.Log())
			}
		})
		md, err := (&discovery.Fetcher{HTTPClient: srv.HTTPClient}).Discover(ctx, srv.Issuer)
		if err != nil {
			t.Fatalf("%s: discovery: %v", s.name, err)
		}
		intro := introspectionEndpoint(t, srv, md.Source)
		live[s.name] = running{srv: srv, intro: intro}
		for _, c := range perMethod {
			if !containsMethod(s.methods, c.method) {
				continue
			}
			if why, ok := c.refusedBy[s.name]; ok {
				c.wantReason = why
			}
			c.server = s.name
			c.name = s.name + "-" + c.name
			cases = append(cases, c)
			u := md.TokenURL(c.method.MutualTLS())
			secret := map[string]string{"client_id": c.client}
			for k, v := range c.secret {
				secret[k] = v
			}
			putInteropSecret(t, sm, base+c.name, secret)
			e := oauth.Endpoint{TokenURL: u, AuthMethod: c.method, Scope: "api", SigningAlg: c.alg}
			doc.WriteString(registry.EntryYAML(c.name, base+c.name, e))
			if c.kmsKey != "" {
				doc.WriteString("    signing_key: kms:" + c.kmsKey + "\n")
			}
		}
		// By issuer alone: the function discovers the token endpoint (the mTLS alias
		// for mutual TLS), and refuses a method the server does not list.
		byIssuer := []interopCase{{name: "issuer-pk", client: "pk", method: oauth.PrivateKeyJWT, secret: pem(jwtKey)}}
		switch {
		case slices.Contains(s.methods, oauth.SelfSignedTLSClientAuth):
			byIssuer = append(byIssuer, interopCase{name: "issuer-selfsigned", client: "selfsigned", method: oauth.SelfSignedTLSClientAuth, secret: mtls(selfCert)})
		case slices.Contains(s.methods, oauth.TLSClientAuth):
			byIssuer = append(byIssuer,
				interopCase{name: "issuer-mtls", client: "mtls", method: oauth.TLSClientAuth, secret: mtls(mtlsCert)},
				interopCase{name: "issuer-unlisted", client: "mtls", method: oauth.SelfSignedTLSClientAuth, secret: mtls(selfCert), wantReason: "token_endpoint_auth_methods_supported"})
		default:
			byIssuer = append(byIssuer, interopCase{name: "issuer-unlisted", client: "pk", method: oauth.TLSClientAuth, secret: mtls(mtlsCert), wantReason: "token_endpoint_auth_methods_supported"})
		}
		for _, c := range byIssuer {
			c.server, c.name, c.issuer = s.name, s.name+"-"+c.name, true
			cases = append(cases, c)
			secret := map[string]string{"client_id": c.client}
			for k, v := range c.secret {
				secret[k] = v
			}
			putInteropSecret(t, sm, base+c.name, secret)
			fmt.Fprintf(&doc, "  - name: %s\n    issuer: %s\n    secret_id: %s\n    auth_method: %s\n    scope: api\n", c.name, srv.Issuer, base+c.name, c.method)
		}
	}

	h, logs, metrics := handlerFor(t, cfg, doc.String(), prefix)
	// As main wires it, but trusting the test PKI that issued every server's certificate.
	trust := func() *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Roots, MinVersion: tls.VersionTLS12}}}
	}
	h.Refresher.Client = &oauth.Client{UserAgent: "token-refresher", InitialBackoff: time.Millisecond, HTTPClient: trust()}
	h.Refresher.Discovery = discovery.NewCache(&discovery.Fetcher{HTTPClient: trust()}, 0, nil)

	ev, _ := json.Marshal(map[string]any{"action": "rotate", "providers": []string{"*"}})
	res, runErr := h.Handle(ctx, ev)
	if runErr == nil {
		t.Error("the run succeeded, want it to fail for the providers with a wrong key or certificate")
	}
	b, _ := json.Marshal(res)
	for _, kp := range []*authservers.KeyPair{mtlsCert, otherCert, selfCert, unregistered, jwtKey, wrongKey} {
		for _, f := range oauthtest.KeyForms(string(kp.KeyPEM)) {
			if len(f) < 16 {
				continue
			}
			for where, text := range map[string]string{"result": string(b), "logs": logs.String(), "metrics": metrics.String()} {
				if strings.Contains(text, f) {
					t.Fatalf("the %s hold a private key (%.24q…)", where, f)
				}
			}
		}
	}
	for _, s := range []string{basicSecret, hsSecret} {
		if strings.Contains(string(b)+logs.String()+metrics.String(), s) {
			t.Fatal("the result, logs or metrics hold a client secret")
		}
	}

	got := byProvider(res)

	// tokenctl check -probe's path: a dry run reports, for a provider given by
	// issuer, the discovered endpoint, what the server lists, and the certificate.
	var byIssuer []string
	for _, c := range cases {
		if c.issuer {
			byIssuer = append(byIssuer, c.name)
		}
	}
	probed, _ := h.Refresher.Run(ctx, refresher.Request{Action: refresher.ActionRotate, Providers: byIssuer, DryRun: true})
	for _, c := range cases {
		if !c.issuer {
			continue
		}
		o := byProvider(probed)[c.name]
		if c.wantReason != "" {
			if o.Status != refresher.StatusFailed || !strings.Contains(o.Error, c.wantReason) {
				t.Errorf("%s: got probe %s %q, want failed with %s", c.name, o.Status, o.Error, c.wantReason)
			}
			continue
		}
		p := o.Probe
		if o.Status != refresher.StatusChecked || p == nil || p.AuthMethod != string(c.method) || p.TokenEndpoint == "" ||
			!containsMethod(toMethods(p.AuthMethodsSupported), c.method) || c.method.MutualTLS() != (p.Certificate != nil) {
			t.Errorf("%s: got probe %s %q %+v, want the method, the discovered endpoint, what the server lists and, for mTLS, the certificate", c.name, o.Status, o.Error, p)
			continue
		}
		cert := ""
		if p.Certificate != nil {
			cert = ", certificate " + p.Certificate.Subject + " until " + p.Certificate.NotAfter
		}
		t.Logf("probe: %-14s %-28s %s lists %v%s", c.server, c.method, p.TokenEndpoint, p.AuthMethodsSupported, cert)
	}
	for _, c := range cases {
		o := got[c.name]
		param, perr := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(prefix + "/" + c.name), WithDecryption: aws.Bool(true)})
		if c.wantReason != "" {
			var nf *ssmtypes.ParameterNotFound
			switch {
			case o.Status != refresher.StatusFailed || !strings.Contains(o.Error, c.wantReason):
				t.Errorf("%s: got %s %q, want failed with %s", c.name, o.Status, o.Error, c.wantReason)
			case !errors.As(perr, &nf):
				t.Errorf("%s: got parameter %v, %v; want nothing published", c.name, param, perr)
			default:
				t.Logf("interop: %-14s %-28s %-30s refused: %s", c.server, c.method, c.name, o.Error)
			}
			continue
		}
		if o.Status != refresher.StatusRefreshed {
			t.Errorf("%s: got %s %q, want refreshed", c.name, o.Status, o.Error)
			continue
		}
		if perr != nil {
			t.Errorf("%s: %v", c.name, perr)
			continue
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(param.Parameter.Value)), &tok); err != nil || tok.AccessToken == "" {
			t.Errorf("%s: published %v, want a token", c.name, err)
			continue
		}
		r := live[c.server]
		in, err := r.srv.Introspect(ctx, r.intro, tok.AccessToken)
		if err != nil {
			t.Errorf("%s: introspection: %v", c.name, err)
			continue
		}
		if !in.Active || in.ClientID != c.client {
			t.Errorf("%s: got introspection %+v, want active for client %s", c.name, in, c.client)
			continue
		}
		how := "key from the secret"
		if c.issuer {
			how += ", by issuer"
		}
		switch {
		case c.kmsKey != "":
			how = "key in KMS, " + string(c.alg)
		case c.method == oauth.ClientSecretBasic || c.method == oauth.ClientSecretJWT:
			how = "client secret"
		}
		t.Logf("interop: %-14s %-28s %-30s published, introspection active for %s (%s)", c.server, c.method, c.name, c.client, how)
	}
}

func containsMethod(ms []oauth.AuthMethod, m oauth.AuthMethod) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func toMethods(ss []string) []oauth.AuthMethod {
	out := make([]oauth.AuthMethod, len(ss))
	for i, s := range ss {
		out[i] = oauth.AuthMethod(s)
	}
	return out
}

// kmsJWK is the JSON Web Key of a KMS key's public half for alg: what tokenctl
// jwks -alg prints for it.
func kmsJWK(t *testing.T, pub crypto.PublicKey, kid string, alg oauth.SigningAlg) map[string]any {
	t.Helper()
	k, err := oauth.PublicJWK(pub, kid, alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// introspectionEndpoint reads the introspection endpoint from the metadata document.
func introspectionEndpoint(t *testing.T, srv *authservers.Server, source string) string {
	t.Helper()
	resp, err := srv.HTTPClient.Get(source)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Introspection string `json:"introspection_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Introspection == "" {
		t.Fatalf("%s: no introspection_endpoint (%v)", source, err)
	}
	return doc.Introspection
}

func putInteropSecret(t *testing.T, sm *secretsmanager.Client, id string, v map[string]string) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
}

// interopRandom is a random client secret of 32 URL-safe characters.
func interopRandom(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
