// Package authservers starts real, independent OAuth 2.0 authorization servers on
// 127.0.0.1 for the interop tests: each with the clients a test registers, over
// HTTPS with a throwaway PKI, asking every client for a certificate so that mutual
// TLS can be decided per client (RFC 8705), and each able to confirm a token it
// issued itself (token introspection, RFC 7662).
//
// The servers are installed by `make authservers-deps` with pinned versions
// (scripts/authservers/): oidc-provider (npm), Authlib (PyPI), ory/fosite (Go),
// Spring Authorization Server, Keycloak and the Connect2id Nimbus OAuth 2.0 SDK
// (all three Maven Central); a test that finds one missing fails and says so.
package authservers

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Auth methods, named as in RFC 7591's registry.
const (
	ClientSecretBasic        = "client_secret_basic"
	ClientSecretJWT          = "client_secret_jwt"
	PrivateKeyJWT            = "private_key_jwt"
	TLSClientAuth            = "tls_client_auth"
	SelfSignedTLSClientAuth  = "self_signed_tls_client_auth"
	introspectorID           = "introspector"
	maxAnswerBytes           = 1 << 20
	introspectorSecretLength = 32
)

// Client is one client a server registers.
type Client struct {
	// ID is the client_id.
	ID string
	// Method is its token_endpoint_auth_method.
	Method string
	// Secret is its client_secret (client_secret_basic, client_secret_jwt).
	Secret string
	// JWKS is its public keys (private_key_jwt, self_signed_tls_client_auth).
	JWKS []map[string]any
	// SubjectDN is the certificate subject it must present (tls_client_auth).
	SubjectDN string
	// SigningAlg is the one JWS algorithm its assertions must use (RFC 7591's
	// token_endpoint_auth_signing_alg); empty leaves it to the server. fosite and
	// Spring hold each client to one algorithm, so a key used with two algorithms
	// is registered as two clients.
	SigningAlg string
}

// Server is a running authorization server.
type Server struct {
	// Issuer is its issuer, https://127.0.0.1:PORT.
	Issuer string
	// HTTPClient trusts the server's certificate and presents none.
	HTTPClient *http.Client
	roots      *PKI
	secret     string
	cmd        *exec.Cmd
	done       chan error
	stderr     *strings.Builder
}

// Log is the start of what the server wrote to its standard error, for a failing
// test to show.
func (s *Server) Log() string { return s.stderr.String() }

// Root is the repository's root: the nearest directory above the working
// directory that holds go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// StartOIDCProvider starts oidc-provider (npm) with clients, and an introspection
// client of its own. It runs until ctx ends or Close.
func StartOIDCProvider(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "scripts", "authservers", "oidc-provider")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		return nil, fmt.Errorf("oidc-provider is not installed in %s: run make authservers-deps", dir)
	}
	// oidc-provider registers clients by RFC 7591 metadata, in full: no redirects,
	// only the client credentials grant.
	s, confPath, err := configure(pki, tmp, "oidc-provider.json", true, clients, func(m map[string]any) {
		m["grant_types"], m["response_types"], m["redirect_uris"] = []string{"client_credentials"}, []string{}, []string{}
		if m["client_id"] == introspectorID {
			m["grant_types"] = []string{}
		} else {
			m["scope"] = "api"
		}
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", "server.mjs", confPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=test")
	return s, s.start(cmd)
}

// start runs cmd and waits for its {"issuer": ...} line.
func (s *Server) start(cmd *exec.Cmd) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.stderr = &strings.Builder{}
	cmd.Stderr = &limited{w: s.stderr, n: 16 << 10}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		err := cmd.Wait()
		return fmt.Errorf("%s exited before listening (%v): %s", cmd.Path, err, s.stderr.String())
	}
	var ready struct{ Issuer string }
	if err := json.Unmarshal(lines.Bytes(), &ready); err != nil || ready.Issuer == "" {
		_ = cmd.Process.Kill()
		return fmt.Errorf("unexpected first line %q: %v", lines.Text(), err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, out)
		s.done <- cmd.Wait()
	}()
	s.Issuer = ready.Issuer
	s.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}}
	return nil
}

// TLSConfig trusts the server; add Certificates to present a client certificate.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots.Roots, MinVersion: tls.VersionTLS12}
}

// Close stops the server.
func (s *Server) Close() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

// Introspection is what a server says of a token it is shown.
type Introspection struct {
	Active   bool   `json:"active"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// Introspect asks the server about token (RFC 7662), as its own introspection client.
func (s *Server) Introspect(ctx context.Context, endpoint, token string) (*Introspection, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(introspectorID, s.secret)
	resp, err := s.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection answered %d: %s", resp.StatusCode, body)
	}
	var in Introspection
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	return &in, nil
}

// limited keeps the first n bytes written to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// clientMetadata is c's registration, by the names of RFC 7591 and RFC 8705.
func clientMetadata(c Client) map[string]any {
	m := map[string]any{"client_id": c.ID, "token_endpoint_auth_method": c.Method}
	if c.Secret != "" {
		m["client_secret"] = c.Secret
	}
	if c.JWKS != nil {
		m["jwks"] = map[string]any{"keys": c.JWKS}
	}
	if c.SubjectDN != "" {
		m["tls_client_auth_subject_dn"] = c.SubjectDN
	}
	if c.SigningAlg != "" {
		m["token_endpoint_auth_signing_alg"] = c.SigningAlg
	}
	return m
}

// configure makes a server's certificate and the JSON file it starts from, under
// tmp as name: its TLS key and certificate, the CA whose client certificates it
// accepts (with clientCA), and the registrations of clients and of the server's
// own introspection client, each passed through adjust when it is not nil. The
// returned Server holds the introspection client's secret.
func configure(pki *PKI, tmp, name string, clientCA bool, clients []Client, adjust func(map[string]any)) (*Server, string, error) {
	srvCert, err := pki.Server()
	if err != nil {
		return nil, "", err
	}
	s := &Server{roots: pki, secret: randomString(introspectorSecretLength)}
	meta := []map[string]any{clientMetadata(Client{ID: introspectorID, Secret: s.secret, Method: ClientSecretBasic})}
	for _, c := range clients {
		meta = append(meta, clientMetadata(c))
	}
	if adjust != nil {
		for _, m := range meta {
			adjust(m)
		}
	}
	tlsConf := map[string]string{"key": string(srvCert.KeyPEM), "cert": string(srvCert.CertPEM)}
	if clientCA {
		tlsConf["client_ca"] = string(pki.CAPEM)
	}
	conf, err := json.Marshal(map[string]any{"tls": tlsConf, "clients": meta})
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(tmp, name)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		return nil, "", err
	}
	return s, path, nil
}
