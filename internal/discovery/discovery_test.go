package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

const issuer = "https://as.example.com/tenant"

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		wantErr   error
		wantToken string
		wantMTLS  string
		wantAuth  []string
	}{
		{name: "minimal, RFC 8414 default methods",
			doc:       `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/tenant/token"}`,
			wantToken: "https://as.example.com/tenant/token", wantAuth: []string{"client_secret_basic"}},
		{name: "methods and mTLS alias",
			doc:       `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/t","token_endpoint_auth_methods_supported":["private_key_jwt","tls_client_auth"],"mtls_endpoint_aliases":{"token_endpoint":"https://mtls.as.example.com/t"}}`,
			wantToken: "https://as.example.com/t", wantMTLS: "https://mtls.as.example.com/t", wantAuth: []string{"private_key_jwt", "tls_client_auth"}},
		{name: "empty methods list stays empty",
			doc:       `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/t","token_endpoint_auth_methods_supported":[]}`,
			wantToken: "https://as.example.com/t", wantAuth: []string{}},
		{name: "another issuer", doc: `{"issuer":"https://evil.example.com/tenant","token_endpoint":"https://as.example.com/t"}`, wantErr: ErrIssuerMismatch},
		{name: "issuer with a trailing slash is another issuer", doc: `{"issuer":"https://as.example.com/tenant/","token_endpoint":"https://as.example.com/t"}`, wantErr: ErrIssuerMismatch},
		{name: "issuer in another case is another issuer", doc: `{"issuer":"https://AS.example.com/tenant","token_endpoint":"https://as.example.com/t"}`, wantErr: ErrIssuerMismatch},
		{name: "no issuer", doc: `{"token_endpoint":"https://as.example.com/t"}`, wantErr: ErrInvalidDocument},
		{name: "no token endpoint", doc: `{"issuer":"https://as.example.com/tenant"}`, wantErr: ErrInvalidDocument},
		{name: "plain http token endpoint", doc: `{"issuer":"https://as.example.com/tenant","token_endpoint":"http://as.example.com/t"}`, wantErr: ErrInvalidDocument},
		{name: "token endpoint with user info", doc: `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://u:p@as.example.com/t"}`, wantErr: ErrInvalidDocument},
		{name: "plain http mTLS alias", doc: `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/t","mtls_endpoint_aliases":{"token_endpoint":"http://mtls.example.com/t"}}`, wantErr: ErrInvalidDocument},
		{name: "relative token endpoint", doc: `{"issuer":"https://as.example.com/tenant","token_endpoint":"/t"}`, wantErr: ErrInvalidDocument},
		{name: "not JSON", doc: `<html>`, wantErr: ErrInvalidDocument},
		{name: "not an object", doc: `[1]`, wantErr: ErrInvalidDocument},
		{name: "methods not a list", doc: `{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/t","token_endpoint_auth_methods_supported":"private_key_jwt"}`, wantErr: ErrInvalidDocument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.doc), issuer)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := m.TokenURL(false).String(); got != tt.wantToken {
				t.Errorf("got token endpoint %s, want %s", got, tt.wantToken)
			}
			wantMTLS := tt.wantMTLS
			if wantMTLS == "" {
				wantMTLS = tt.wantToken
			}
			if got := m.TokenURL(true).String(); got != wantMTLS {
				t.Errorf("got mTLS token endpoint %s, want %s", got, wantMTLS)
			}
			if !slices.Equal(m.AuthMethods, tt.wantAuth) {
				t.Errorf("got methods %q, want %q", m.AuthMethods, tt.wantAuth)
			}
		})
	}
}

func TestSupports(t *testing.T) {
	m := &Metadata{AuthMethods: []string{"client_secret_basic", "private_key_jwt"}}
	if err := m.Supports("private_key_jwt"); err != nil {
		t.Errorf("got %v for a listed method, want nil", err)
	}
	err := m.Supports("tls_client_auth")
	if !errors.Is(err, ErrMethodNotSupported) {
		t.Fatalf("got %v for an unlisted method, want ErrMethodNotSupported", err)
	}
	for _, want := range []string{"tls_client_auth", "client_secret_basic, private_key_jwt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to name %q", err, want)
		}
	}
}

func TestWellKnownURLs(t *testing.T) {
	tests := []struct{ issuer, rfc, oidc string }{
		{"https://as.example.com", "https://as.example.com/.well-known/oauth-authorization-server", "https://as.example.com/.well-known/openid-configuration"},
		{"https://as.example.com/", "https://as.example.com/.well-known/oauth-authorization-server", "https://as.example.com/.well-known/openid-configuration"},
		{"https://as.example.com/oauth2/default", "https://as.example.com/.well-known/oauth-authorization-server/oauth2/default", "https://as.example.com/oauth2/default/.well-known/openid-configuration"},
		{"https://login.example.com/tid/v2.0/", "https://login.example.com/.well-known/oauth-authorization-server/tid/v2.0/", "https://login.example.com/tid/v2.0/.well-known/openid-configuration"},
		{"http://127.0.0.1:8080/realms/a%2Fb", "http://127.0.0.1:8080/.well-known/oauth-authorization-server/realms/a%2Fb", "http://127.0.0.1:8080/realms/a%2Fb/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		u, err := CheckIssuer(tt.issuer)
		if err != nil {
			t.Fatalf("CheckIssuer(%q): %v", tt.issuer, err)
		}
		got := WellKnownURLs(u)
		if want := []string{tt.rfc, tt.oidc}; !slices.Equal(got, want) {
			t.Errorf("issuer %s: got %q, want %q", tt.issuer, got, want)
		}
	}
}

func TestCheckIssuer(t *testing.T) {
	for _, bad := range []string{"http://as.example.com", "https://as.example.com/?tenant=a", "https://as.example.com/#x", "https://u:p@as.example.com", "as.example.com", ""} {
		if _, err := CheckIssuer(bad); err == nil {
			t.Errorf("got no error for issuer %q, want one", bad)
		}
	}
	for _, good := range []string{"https://as.example.com", "http://127.0.0.1:9000/x", "http://localhost/"} {
		if _, err := CheckIssuer(good); err != nil {
			t.Errorf("got %v for issuer %q, want nil", err, good)
		}
	}
}

// server serves handlers by path on loopback; its URL is an issuer.
func server(t *testing.T, routes map[string]http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h, ok := routes[r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func doc(issuer, token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"token_endpoint_auth_methods_supported":["private_key_jwt"]}`, issuer, token)
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	t.Run("RFC 8414 first, with the path inserted", func(t *testing.T) {
		var iss string
		srv, _ := server(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server/tenant": func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/rfc8414")(w, r) },
			"/tenant/.well-known/openid-configuration":       func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/oidc")(w, r) },
		})
		iss = srv.URL + "/tenant"
		m, err := (&Fetcher{}).Discover(ctx, iss)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.TokenEndpoint.String(), iss+"/rfc8414"; got != want {
			t.Errorf("got token endpoint %s, want %s", got, want)
		}
	})
	t.Run("OIDC when RFC 8414 has none", func(t *testing.T) {
		var iss string
		srv, _ := server(t, map[string]http.HandlerFunc{
			"/tenant/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/oidc")(w, r) },
		})
		iss = srv.URL + "/tenant"
		m, err := (&Fetcher{}).Discover(ctx, iss)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.TokenEndpoint.String(), iss+"/oidc"; got != want {
			t.Errorf("got token endpoint %s, want %s", got, want)
		}
		if got, want := m.Source, iss+"/.well-known/openid-configuration"; got != want {
			t.Errorf("got source %s, want %s", got, want)
		}
	})
	t.Run("a refused RFC 8414 document is final", func(t *testing.T) {
		var iss string
		srv, hits := server(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": doc("https://evil.example.com", "https://evil.example.com/t"),
			"/.well-known/openid-configuration":       func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/oidc")(w, r) },
		})
		iss = srv.URL
		if _, err := (&Fetcher{}).Discover(ctx, iss); !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("got %v, want ErrIssuerMismatch", err)
		}
		if got := hits.Load(); got != 1 {
			t.Errorf("got %d requests, want 1: the OIDC location must not overrule a refused document", got)
		}
	})
	t.Run("no redirect is followed", func(t *testing.T) {
		var iss string
		srv, hits := server(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			"/.well-known/openid-configuration": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
			},
			"/elsewhere": func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/t")(w, r) },
		})
		iss = srv.URL
		_, err := (&Fetcher{}).Discover(ctx, iss)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "redirect") {
			t.Fatalf("got %v, want ErrUnavailable naming the redirect", err)
		}
		if got := hits.Load(); got != 2 {
			t.Errorf("got %d requests, want 2 (no redirect followed)", got)
		}
	})
	t.Run("the answer is bounded", func(t *testing.T) {
		var iss string
		srv, _ := server(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":"%s/t","x":"%s"}`, iss, iss, strings.Repeat("a", maxDocumentBytes))
			},
		})
		iss = srv.URL
		if _, err := (&Fetcher{}).Discover(ctx, iss); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("got %v, want ErrUnavailable for an answer too large", err)
		}
	})
	t.Run("an insecure issuer is refused before any request", func(t *testing.T) {
		if _, err := (&Fetcher{}).Discover(ctx, "http://as.example.com"); !errors.Is(err, ErrInvalidDocument) {
			t.Fatalf("got %v, want ErrInvalidDocument", err)
		}
	})
	t.Run("a document naming an http endpoint outside loopback is refused", func(t *testing.T) {
		var iss string
		srv, _ := server(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": func(w http.ResponseWriter, r *http.Request) { doc(iss, "http://as.example.com/t")(w, r) },
		})
		iss = srv.URL
		if _, err := (&Fetcher{}).Discover(ctx, iss); !errors.Is(err, ErrInvalidDocument) {
			t.Fatalf("got %v, want ErrInvalidDocument", err)
		}
	})
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	var iss string
	srv, hits := server(t, map[string]http.HandlerFunc{
		"/.well-known/oauth-authorization-server": func(w http.ResponseWriter, r *http.Request) { doc(iss, iss+"/t")(w, r) },
	})
	iss = srv.URL
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := NewCache(&Fetcher{}, time.Hour, func() time.Time { return now })
	for range 3 {
		if _, err := c.Get(ctx, iss); err != nil {
			t.Fatal(err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("got %d reads within the TTL, want 1", got)
	}
	now = now.Add(time.Hour)
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("got %d reads once the TTL passed, want 2", got)
	}
	c.Forget(iss)
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("got %d reads after Forget, want 3", got)
	}
	if _, err := c.Get(ctx, srv.URL+"/none"); err == nil {
		t.Fatal("got no error for an issuer without metadata")
	}
	before := hits.Load()
	if _, err := c.Get(ctx, srv.URL+"/none"); err == nil {
		t.Fatal("got no error for an issuer without metadata")
	}
	if got := hits.Load() - before; got != 2 {
		t.Errorf("got %d requests for a failed issuer asked again, want 2: a failure must not be cached", got)
	}
}

func TestMoved(t *testing.T) {
	ctx := context.Background()
	status := func(code int) *url.URL {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
		}))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL + "/token")
		return u
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	gone, _ := url.Parse(closed.URL + "/token")
	closed.Close()
	tests := []struct {
		name string
		url  *url.URL
		want bool
	}{
		{"404", status(http.StatusNotFound), true},
		{"410", status(http.StatusGone), true},
		{"connection refused", gone, true},
		{"401", status(http.StatusUnauthorized), false},
		{"400", status(http.StatusBadRequest), false},
	}
	c := &oauth.Client{MaxAttempts: 1}
	for _, tt := range tests {
		_, err := c.Token(ctx, oauth.Endpoint{TokenURL: tt.url}, oauth.Credentials{ClientID: "id", ClientSecret: "secret"})
		if err == nil {
			t.Fatalf("%s: got no error", tt.name)
		}
		if got := Moved(err); got != tt.want {
			t.Errorf("%s: got Moved %v for %v, want %v", tt.name, got, err, tt.want)
		}
	}
}
