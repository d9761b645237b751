// Command fosite serves ory/fosite on 127.0.0.1, a real authorization server for
// the interop tests, built into a test-only binary by make authservers-deps.
//
// usage: fosite CONFIG (a JSON file)
// CONFIG: {"tls": {"key": PEM, "cert": PEM},
//
//	"clients": [{"client_id", "client_secret", "token_endpoint_auth_method", "jwks",
//	             "token_endpoint_auth_signing_alg" (default ES256)}, ...]}
//
// fosite checks client_secret_basic and private_key_jwt (RFC 7523) itself; it has
// neither client_secret_jwt nor mutual TLS. It serves HTTPS on a random loopback port,
// prints one JSON line, {"issuer": "https://127.0.0.1:PORT"}, once it listens, and
// confirms its tokens at its RFC 7662 introspection endpoint.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
)

type config struct {
	TLS struct {
		Key  string `json:"key"`
		Cert string `json:"cert"`
	} `json:"tls"`
	Clients []struct {
		ID     string              `json:"client_id"`
		Secret string              `json:"client_secret"`
		Method string              `json:"token_endpoint_auth_method"`
		JWKS   *jose.JSONWebKeySet `json:"jwks"`
		Alg    string              `json:"token_endpoint_auth_signing_alg"`
	} `json:"clients"`
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		return err
	}
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	cert, err := tls.X509KeyPair([]byte(c.TLS.Cert), []byte(c.TLS.Key))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("https://%s", ln.Addr())

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	conf := &fosite.Config{
		GlobalSecret:        secret,
		TokenURL:            issuer + "/token",
		AccessTokenLifespan: time.Hour,
		ScopeStrategy:       fosite.ExactScopeStrategy,
	}
	store := storage.NewMemoryStore()
	hasher := &fosite.BCrypt{Config: conf}
	for _, cl := range c.Clients {
		// fosite holds each private_key_jwt client to exactly one algorithm.
		if cl.Alg == "" {
			cl.Alg = "ES256"
		}
		dc := &fosite.DefaultClient{ID: cl.ID, GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}}
		if cl.Secret != "" {
			if dc.Secret, err = hasher.Hash(context.Background(), []byte(cl.Secret)); err != nil {
				return err
			}
		}
		store.Clients[cl.ID] = &fosite.DefaultOpenIDConnectClient{
			DefaultClient: dc, JSONWebKeys: cl.JWKS, TokenEndpointAuthMethod: cl.Method,
			TokenEndpointAuthSigningAlgorithm: cl.Alg,
		}
	}
	signing, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	provider := compose.ComposeAllEnabled(conf, store, signing)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := provider.NewAccessRequest(ctx, r, new(fosite.DefaultSession))
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		resp, err := provider.NewAccessResponse(ctx, ar)
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		provider.WriteAccessResponse(ctx, w, ar, resp)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ir, err := provider.NewIntrospectionRequest(ctx, r, new(fosite.DefaultSession))
		if err != nil {
			provider.WriteIntrospectionError(ctx, w, err)
			return
		}
		provider.WriteIntrospectionResponse(ctx, w, ir)
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": issuer, "token_endpoint": issuer + "/token", "introspection_endpoint": issuer + "/introspect",
			"grant_types_supported":                 []string{"client_credentials"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		})
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("{\"issuer\":%q}\n", issuer)
	return srv.ServeTLS(ln, "", "")
}
