package refresher

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
)

// fakeDiscovery serves metadata by issuer; after a Forget, an issuer's next
// document is its entry in after, if any (the server moved its endpoint).
type fakeDiscovery struct {
	mu      sync.Mutex
	docs    map[string]*discovery.Metadata
	after   map[string]*discovery.Metadata
	gets    map[string]int
	forgets map[string]int
}

func (f *fakeDiscovery) Get(_ context.Context, issuer string) (*discovery.Metadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[issuer]++
	return f.docs[issuer], nil
}

func (f *fakeDiscovery) Forget(issuer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgets[issuer]++
	if m, ok := f.after[issuer]; ok {
		f.docs[issuer] = m
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestRunDiscovery: a provider configured by issuer sends its request to the
// token endpoint its metadata names, the mTLS alias for mutual TLS; an auth_method
// the server does not list fails only that provider, naming what it lists; a
// token endpoint that cannot be reached is discovered once more and the request
// made there, while a refusal of the credentials reads nothing again.
func TestRunDiscovery(t *testing.T) {
	w := newKeyWorld(t)
	tokenURL := w.srv.TokenURL()
	nowhere := mustURL(t, "https://127.0.0.1:1/token") // refused: nothing listens there
	w.secrets.current["s/hmac-wrong"] = secrets.Secret{ClientID: "id-hmac", ClientSecret: hmacSecret + "-not-it", VersionID: "v1"}
	d := &fakeDiscovery{gets: map[string]int{}, forgets: map[string]int{},
		docs: map[string]*discovery.Metadata{
			"https://as.example":         {Issuer: "https://as.example", TokenEndpoint: tokenURL, AuthMethods: []string{"client_secret_jwt", "tls_client_auth"}},
			"https://mtls.example":       {Issuer: "https://mtls.example", TokenEndpoint: nowhere, MTLSTokenEndpoint: tokenURL, AuthMethods: []string{"tls_client_auth"}},
			"https://secretonly.example": {Issuer: "https://secretonly.example", TokenEndpoint: tokenURL, AuthMethods: []string{"client_secret_basic", "client_secret_post"}},
			"https://moved.example":      {Issuer: "https://moved.example", TokenEndpoint: nowhere, AuthMethods: []string{"client_secret_jwt"}},
		},
		after: map[string]*discovery.Metadata{
			"https://moved.example": {Issuer: "https://moved.example", TokenEndpoint: tokenURL, AuthMethods: []string{"client_secret_jwt"}},
		},
	}
	entry := func(name, issuer, secret, method string) string {
		return "  - name: " + name + "\n    issuer: " + issuer + "\n    secret_id: " + secret + "\n    auth_method: " + method + "\n"
	}
	doc := "providers:\n" +
		entry("hmac", "https://as.example", "s/hmac", "client_secret_jwt") +
		entry("mtls", "https://mtls.example", "s/mtls", "tls_client_auth") +
		entry("pem", "https://secretonly.example", "s/pem", "private_key_jwt") +
		entry("moved", "https://moved.example", "s/hmac", "client_secret_jwt") +
		entry("hmac-wrong", "https://as.example", "s/hmac-wrong", "client_secret_jwt")
	reg, err := registry.Load(strings.NewReader(doc), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := fastClient()
	c.HTTPClient = w.srv.Client()
	r := &Refresher{Providers: reg, Secrets: w.secrets, Store: w.store, Client: c, Discovery: d}
	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if err == nil {
		t.Error("got no error, want the run to fail for pem and hmac-wrong")
	}
	got := map[string]Outcome{}
	for _, o := range res.Results {
		got[o.Provider] = o
	}
	for _, tt := range []struct {
		name   string
		status Status
		reason string
	}{
		{"hmac", StatusRefreshed, ""},
		{"mtls", StatusRefreshed, ""},
		{"moved", StatusRefreshed, ""},
		{"pem", StatusFailed, "auth_method private_key_jwt is not in the server's token_endpoint_auth_methods_supported client_secret_basic, client_secret_post"},
		{"hmac-wrong", StatusFailed, "invalid_client"},
	} {
		if o := got[tt.name]; o.Status != tt.status || !strings.Contains(o.Error, tt.reason) {
			t.Errorf("%s: got %s %q, want %s %q", tt.name, o.Status, o.Error, tt.status, tt.reason)
		}
	}
	if _, ok := w.store.tokens[param("pem")]; ok {
		t.Error("pem: a token was published for a method the server does not list")
	}
	if n := d.forgets["https://moved.example"]; n != 1 {
		t.Errorf("moved: got %d re-discoveries, want 1", n)
	}
	if n := d.forgets["https://as.example"]; n != 0 {
		t.Errorf("a refusal of the credentials made %d re-discoveries, want 0", n)
	}
}

// TestRunIssuerWithoutDiscovery: a Refresher without Discovery fails a provider
// configured by issuer with that reason, and only that provider.
func TestRunIssuerWithoutDiscovery(t *testing.T) {
	w := newKeyWorld(t)
	doc := "providers:\n  - name: hmac\n    issuer: https://as.example\n    secret_id: s/hmac\n    auth_method: client_secret_jwt\n" +
		registry.EntryYAML("pem", "s/pem", oauthEndpoint(w))
	reg, err := registry.Load(strings.NewReader(doc), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := fastClient()
	c.HTTPClient = w.srv.Client()
	res, _ := (&Refresher{Providers: reg, Secrets: w.secrets, Store: w.store, Client: c}).Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	for _, o := range res.Results {
		switch o.Provider {
		case "hmac":
			if o.Status != StatusFailed || !strings.Contains(o.Error, "no discovery client") {
				t.Errorf("hmac: got %s %q, want failed for want of discovery", o.Status, o.Error)
			}
		case "pem":
			if o.Status != StatusRefreshed {
				t.Errorf("pem: got %s %q, want refreshed", o.Status, o.Error)
			}
		}
	}
}

func oauthEndpoint(w *keyWorld) oauth.Endpoint {
	return oauth.Endpoint{TokenURL: w.srv.TokenURL(), AuthMethod: oauth.PrivateKeyJWT, SigningAlg: oauth.ES256}
}

// TestCertificateNearExpiry: a mutual TLS certificate that expires within
// CertificateWarning still gets its token, with a note, and makes the provider
// degraded for that reason; a dry run reports the method, the endpoint, what
// discovery listed and the certificate's subject and expiry.
func TestCertificateNearExpiry(t *testing.T) {
	w := newKeyWorld(t)
	key := oauthtest.NewECKey()
	soon, soonPEM := oauthtest.SelfSigned(key, "expiring-soon", 10*24*time.Hour)
	w.srv.Add(oauthtest.KeyClient{ID: "id-soon", Method: oauth.TLSClientAuth, Certificate: soon})
	w.secrets.current["s/soon"] = secrets.Secret{ClientID: "id-soon", Certificate: soonPEM, PrivateKey: oauthtest.KeyPEM(key, oauthtest.PKCS8), VersionID: "v1"}
	far, farPEM := oauthtest.SelfSigned(key, "valid-for-a-year", 365*24*time.Hour)
	w.srv.Add(oauthtest.KeyClient{ID: "id-far", Method: oauth.TLSClientAuth, Certificate: far})
	w.secrets.current["s/far"] = secrets.Secret{ClientID: "id-far", Certificate: farPEM, PrivateKey: oauthtest.KeyPEM(key, oauthtest.SEC1), VersionID: "v1"}
	d := &fakeDiscovery{gets: map[string]int{}, forgets: map[string]int{}, docs: map[string]*discovery.Metadata{
		"https://as.example": {Issuer: "https://as.example", TokenEndpoint: mustURL(t, "https://127.0.0.1:1/token"), MTLSTokenEndpoint: w.srv.TokenURL(), AuthMethods: []string{"tls_client_auth", "private_key_jwt"}},
	}}
	doc := "providers:\n  - name: soon\n    issuer: https://as.example\n    secret_id: s/soon\n    auth_method: tls_client_auth\n" +
		"  - name: far\n    issuer: https://as.example\n    secret_id: s/far\n    auth_method: tls_client_auth\n"
	reg, err := registry.Load(strings.NewReader(doc), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := fastClient()
	c.HTTPClient = w.srv.Client()
	st := newFakeState()
	r := &Refresher{Providers: reg, Secrets: w.secrets, Store: w.store, Client: c, Discovery: d, State: st}

	res, err := r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}, DryRun: true})
	if err != nil {
		t.Fatalf("probe: %v %+v", err, res)
	}
	for _, o := range res.Results {
		p := o.Probe
		if p == nil || p.AuthMethod != "tls_client_auth" || p.TokenEndpoint != w.srv.TokenURL().String() ||
			strings.Join(p.AuthMethodsSupported, " ") != "tls_client_auth private_key_jwt" || p.Certificate == nil {
			t.Fatalf("%s: got probe %+v, want method, mTLS endpoint, methods listed and certificate", o.Provider, p)
		}
	}
	if p := res.Results[0].Probe; p.Certificate.Subject != soon.Subject.String() || p.Certificate.NotAfter != stamp(soon.NotAfter) {
		t.Errorf("got certificate %+v, want %s until %s", p.Certificate, soon.Subject, stamp(soon.NotAfter))
	}

	res, err = r.Run(context.Background(), Request{Action: ActionRotate, Providers: []string{"*"}})
	if err != nil {
		t.Fatalf("rotate: %v %+v", err, res)
	}
	for _, o := range res.Results {
		if o.Status != StatusRefreshed {
			t.Errorf("%s: got %s %q, want refreshed", o.Provider, o.Status, o.Error)
		}
	}
	if o := res.Results[0]; !strings.Contains(o.Note, "expires at "+stamp(soon.NotAfter)+", within 30 days") {
		t.Errorf("soon: got note %q, want the certificate's coming expiry", o.Note)
	}
	if h := st.health["soon"]; h.State != state.Degraded || !strings.Contains(h.Reason, "client certificate") {
		t.Errorf("soon: got health %s %q, want degraded for the certificate", h.State, h.Reason)
	}
	if h, ok := st.health["far"]; ok && h.State != state.Healthy || res.Results[1].Note != "" {
		t.Errorf("far: got health %s %q, note %q; want healthy, no note", h.State, h.Reason, res.Results[1].Note)
	}
}
