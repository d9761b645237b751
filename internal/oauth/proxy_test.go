package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// partnerHost is the token endpoint's host in the proxy test: not loopback, which
// Go's proxy-from-environment never proxies, and never resolvable (RFC 6761), so a
// request that is not proxied cannot reach the token server by any other way.
const partnerHost = "partner.invalid"

// proxyChildEnv marks the process that TestClientHonoursProxyEnvironment starts:
// net/http reads HTTPS_PROXY and NO_PROXY once per process, and crypto/x509 reads
// SSL_CERT_FILE once per process, so each setting needs a process of its own.
const proxyChildEnv = "TOKEN_REFRESHER_PROXY_TEST_CHILD"

// TestClientHonoursProxyEnvironment: token requests of a Client with no HTTPClient
// of its own, as the function builds it, go through the proxy that HTTPS_PROXY
// names, and not when NO_PROXY names the token endpoint's host. Functions in a VPC
// reach partners only through their proxy.
func TestClientHonoursProxyEnvironment(t *testing.T) {
	if os.Getenv(proxyChildEnv) != "" {
		proxyChild()
		return
	}
	caPEM, leaf := partnerCert(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	var tokenRequests atomic.Int32
	tokenSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != "proxy-client" || r.Host != partnerHost {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"via-proxy-token","token_type":"Bearer","expires_in":3600}`)
	}))
	tokenSrv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	tokenSrv.StartTLS()
	defer tokenSrv.Close()

	proxy := newConnectProxy(tokenSrv.Listener.Addr().String())
	defer proxy.Close()

	tests := []struct {
		name        string
		noProxy     string
		wantConnect []string
		wantToken   bool
	}{
		{"HTTPS_PROXY set: through the proxy", "", []string{partnerHost + ":443"}, true},
		{"NO_PROXY names the host: not proxied", partnerHost, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy.reset()
			before := tokenRequests.Load()
			cmd := exec.Command(os.Args[0], "-test.run=^TestClientHonoursProxyEnvironment$", "-test.count=1")
			cmd.Env = append(withoutProxyEnv(os.Environ()),
				proxyChildEnv+"=1",
				"HTTPS_PROXY="+proxy.URL,
				"NO_PROXY="+tc.noProxy,
				"SSL_CERT_FILE="+caFile,
				"SSL_CERT_DIR="+filepath.Dir(caFile),
			)
			out, err := cmd.CombinedOutput()
			got := string(out)
			if gotConnect := proxy.connects(); !slices.Equal(gotConnect, tc.wantConnect) {
				t.Errorf("proxy saw CONNECT %q, want %q (child said %q)", gotConnect, tc.wantConnect, got)
			}
			served := tokenRequests.Load() - before
			if tc.wantToken {
				if err != nil || !strings.Contains(got, "token via-proxy-token") || served != 1 {
					t.Fatalf("got %q (%v) with %d token requests served, want the token through the proxy in one request", got, err, served)
				}
				return
			}
			if err == nil || !strings.Contains(got, partnerHost) || served != 0 {
				t.Fatalf("got %q (%v) with %d token requests served, want a direct attempt at %s that fails and reaches nothing", got, err, served, partnerHost)
			}
		})
	}
}

// proxyChild asks for one token the way the function does and prints the outcome.
func proxyChild() {
	u, _ := url.Parse("https://" + partnerHost + "/oauth/token")
	c := &oauth.Client{UserAgent: "token-refresher", MaxAttempts: 1}
	tok, err := c.Token(context.Background(), oauth.Endpoint{TokenURL: u}, oauth.Credentials{ClientID: "proxy-client", ClientSecret: "proxy-secret"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("token", tok.AccessToken)
	os.Exit(0)
}

// withoutProxyEnv drops every proxy and CA setting the test itself runs with.
func withoutProxyEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD", "SSL_CERT_FILE", "SSL_CERT_DIR", proxyChildEnv:
			return true
		}
		return false
	})
}

// partnerCert makes a CA and a leaf certificate for partnerHost signed by it.
func partnerCert(t *testing.T) (caPEM []byte, leaf tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := newKey(), newKey()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "proxy test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: partnerHost},
		DNSNames:     []string{partnerHost},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

// connectProxy is an HTTP CONNECT proxy on loopback that records the targets it is
// asked for and connects every tunnel to one address, whatever the target: the
// token server, standing in for the partner.
type connectProxy struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newConnectProxy(upstream string) *connectProxy {
	p := &connectProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.seen = append(p.seen, r.Host)
		p.mu.Unlock()
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			io.Copy(up, rw) // rw first: it may hold bytes read past the CONNECT
			up.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(conn, up)
		conn.Close()
		<-done
	}))
	return p
}

func (p *connectProxy) connects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func (p *connectProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = nil
}
