package refresher

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
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
