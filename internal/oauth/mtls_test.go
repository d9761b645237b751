package oauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
)

// TestMutualTLSSelfSignedOutsideServerCAs: a server whose CertificateRequest names
// acceptable CAs that did not issue the client's self-signed certificate still
// receives that certificate. crypto/tls, given only Config.Certificates, would send
// none, and the server would answer "client certificate was not provided".
func TestMutualTLSSelfSignedOutsideServerCAs(t *testing.T) {
	clientCert, clientPEM := oauthtest.SelfSigned(ecKey, "self-signed-client", time.Hour)
	otherCA, _ := oauthtest.SelfSigned(rsaKey, "some-other-ca", time.Hour)
	cas := x509.NewCertPool()
	cas.AddCert(otherCA)

	var got []*x509.Certificate
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.TLS.PeerCertificates
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
	}))
	// RequireAnyClientCert with ClientCAs: the CA list is sent, nothing is verified,
	// and a handshake without a certificate fails.
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, ClientCAs: cas, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	c := fastClient()
	c.HTTPClient = srv.Client()
	u, _ := url.Parse(srv.URL + "/token")
	e := oauth.Endpoint{TokenURL: u, AuthMethod: oauth.SelfSignedTLSClientAuth}
	cred := oauth.Credentials{ClientID: "c", Certificate: clientPEM, PrivateKey: oauthtest.KeyPEM(ecKey, oauthtest.PKCS8)}
	if _, err := c.Token(context.Background(), e, cred); err != nil {
		t.Fatalf("got %v, want a token", err)
	}
	if len(got) == 0 || !got[0].Equal(clientCert) {
		t.Errorf("got %d peer certificates, want the client's self-signed one", len(got))
	}
}
