package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// KeyFormat is a PEM encoding of a private key.
type KeyFormat string

// The PEM encodings a secret's private_key may use.
const (
	PKCS8 KeyFormat = "PRIVATE KEY"
	PKCS1 KeyFormat = "RSA PRIVATE KEY"
	SEC1  KeyFormat = "EC PRIVATE KEY"
)

// NewRSAKey makes an RSA key of bits bits; it panics if the system cannot.
func NewRSAKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// NewECKey makes an EC P-256 key.
func NewECKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// KeyPEM encodes key in format; it panics for a format the key has not.
func KeyPEM(key crypto.Signer, format KeyFormat) string {
	var der []byte
	var err error
	switch format {
	case PKCS8:
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case PKCS1:
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	case SEC1:
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	}
	if err != nil || der == nil {
		panic(fmt.Sprintf("encode %T as %s: %v", key, format, err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: string(format), Bytes: der}))
}

// SelfSigned makes a self-signed client certificate for key, valid for validFor,
// and returns it parsed and as PEM.
func SelfSigned(key crypto.Signer, cn string, validFor time.Duration) (*x509.Certificate, string) {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// KeyClient is a client a KeyServer knows, registered as RFC 7591 would: its
// method and the key material the server checks.
type KeyClient struct {
	ID     string
	Method oauth.AuthMethod
	// Secret is the HMAC key of client_secret_jwt.
	Secret string
	// PublicKey verifies a private_key_jwt assertion.
	PublicKey crypto.PublicKey
	// Certificate is the client certificate mutual TLS must present.
	Certificate *x509.Certificate
	// Audience is the aud the server wants; its token URL when empty.
	Audience string
	// EchoRefusal makes every refusal quote the whole request body, as a careless
	// server's error_description might.
	EchoRefusal bool
	// Quote, when set, starts every refusal's error_description with what it
	// returns for the request's form, so that a test can make a server quote any
	// text (a form of a key, of the assertion) within the bounds of a reason.
	Quote func(form url.Values) string
}

// Seen is what a KeyServer checked in one accepted or refused request.
type Seen struct {
	Form        url.Values
	Header      map[string]any // the assertion's JOSE header
	Claims      map[string]any // the assertion's claims
	PeerSubject string         // the client certificate's subject in mutual TLS
	Refused     string         // why it refused, or ""
}

// KeyServer is a token endpoint on 127.0.0.1, over TLS that asks for a client
// certificate, that authenticates clients as a strict server does: the assertion's
// signature with the registered key, its typ, iss = sub = client_id, aud, exp at most
// five minutes after iat and not passed, a jti never seen before; for mutual TLS the
// registered certificate in the handshake and no client_secret. It answers a fresh
// random token for an hour.
type KeyServer struct {
	*httptest.Server

	mu      sync.Mutex
	clients map[string]KeyClient
	jtis    map[string]bool
	seen    []Seen
}

// NewKeyServer starts a KeyServer; its token endpoint is TokenURL.
func NewKeyServer() *KeyServer {
	s := &KeyServer{clients: map[string]KeyClient{}, jtis: map[string]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// A refused client certificate is a case under test, not news for the log.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	s.StartTLS()
	return s
}

// TokenURL is the server's token endpoint.
func (s *KeyServer) TokenURL() *url.URL {
	u, _ := url.Parse(s.URL + "/token")
	return u
}

// Add registers c, replacing a client of the same id.
func (s *KeyServer) Add(c KeyClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

// Seen returns what the server checked, request by request.
func (s *KeyServer) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func (s *KeyServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	form, _ := url.ParseQuery(string(body))
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]string
		_ = json.Unmarshal(body, &m)
		form = url.Values{}
		for k, v := range m {
			form.Set(k, v)
		}
	}
	seen := Seen{Form: form}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		seen.PeerSubject = r.TLS.PeerCertificates[0].Subject.String()
	}
	s.mu.Lock()
	c, ok := s.clients[form.Get("client_id")]
	err := "unknown client"
	if ok {
		err = s.check(c, r, form, &seen)
	}
	seen.Refused = err
	s.seen = append(s.seen, seen)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if err != "" {
		if ok && c.Quote != nil {
			err = c.Quote(form) + " " + err
		}
		if ok && c.EchoRefusal {
			err += ": " + string(body)
		}
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": err})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 3600})
}

// check returns why c's request is refused, or "". s.mu is held.
func (s *KeyServer) check(c KeyClient, r *http.Request, form url.Values, seen *Seen) string {
	if form.Get("grant_type") != "client_credentials" {
		return "grant_type must be client_credentials"
	}
	if form.Has("client_secret") || r.Header.Get("Authorization") != "" {
		return "a client_secret was sent; this client authenticates with " + string(c.Method)
	}
	if c.Method.MutualTLS() {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return "no client certificate presented"
		}
		if !r.TLS.PeerCertificates[0].Equal(c.Certificate) {
			return "the client certificate is not the registered one"
		}
		return ""
	}
	if form.Get("client_assertion_type") != oauth.AssertionType {
		return "client_assertion_type must be " + oauth.AssertionType
	}
	tok, err := josejwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.HS256})
	if err != nil {
		return "client_assertion is no JWS: " + err.Error()
	}
	h := tok.Headers[0]
	seen.Header = map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
	for k, v := range h.ExtraHeaders {
		seen.Header[string(k)] = v
	}
	var key any = c.PublicKey
	if c.Method == oauth.ClientSecretJWT {
		key = []byte(c.Secret)
	}
	claims := map[string]any{}
	var std josejwt.Claims
	if err := tok.Claims(key, &std, &claims); err != nil {
		return "client_assertion signature does not verify: " + err.Error()
	}
	seen.Claims = claims
	aud := c.Audience
	if aud == "" {
		aud = s.TokenURL().String()
	}
	now := time.Now()
	switch {
	case h.ExtraHeaders["typ"] != "JWT":
		return "typ must be JWT"
	case std.Issuer != c.ID || std.Subject != c.ID:
		return "iss and sub must be the client_id"
	case !std.Audience.Contains(aud):
		return "aud must be " + aud
	case std.Expiry == nil || std.IssuedAt == nil || std.ID == "":
		return "exp, iat and jti are required"
	case std.Expiry.Time().Sub(std.IssuedAt.Time()) > 5*time.Minute:
		return "exp is more than five minutes after iat"
	case !std.Expiry.Time().After(now):
		return "the assertion has expired"
	case s.jtis[std.ID]:
		return "jti replayed"
	}
	s.jtis[std.ID] = true
	return ""
}

// Thumbprint is the base64url SHA-256 thumbprint of cert (x5t#S256).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
