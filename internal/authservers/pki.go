package authservers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// PKI is a throwaway certificate authority for one test: it issues the servers'
// loopback certificates and the clients' certificates for tls_client_auth.
type PKI struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	// CAPEM is the authority's certificate, to trust the servers and, on the
	// servers, to verify tls_client_auth certificates.
	CAPEM []byte
	// Roots holds CAPEM, for a client's tls.Config.
	Roots *x509.CertPool
}

// NewPKI makes a new authority.
func NewPKI() (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "token-refresher interop CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &PKI{ca: ca, caKey: key, CAPEM: pemBlock("CERTIFICATE", der), Roots: roots}, nil
}

// KeyPair is a certificate and its key, in PEM and ready for crypto/tls.
type KeyPair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
	Key             crypto.Signer
	TLS             tls.Certificate
}

// Server issues a certificate for 127.0.0.1 and localhost.
func (p *PKI) Server() (*KeyPair, error) {
	return p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, false)
}

// Client issues a client certificate with subject CN=cn, valid for validity.
func (p *PKI) Client(cn string, validity time.Duration) (*KeyPair, error) {
	return p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    []string{cn + ".clients.example"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotAfter:    time.Now().Add(validity),
	}, false)
}

// SelfSigned makes a self-signed client certificate, for self_signed_tls_client_auth
// and for private_key_jwt with a certificate.
func (p *PKI) SelfSigned(cn string) (*KeyPair, error) {
	return p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, true)
}

func (p *PKI) issue(tmpl *x509.Certificate, self bool) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	parent, signer := p.ca, p.caKey
	if self {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	return NewKeyPair(der, key)
}

// NewKeyPair wraps a DER certificate and its key.
func NewKeyPair(der []byte, key crypto.Signer) (*KeyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", pkcs8), Cert: cert, Key: key}
	kp.TLS, err = tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	return kp, err
}

// JWK is the public key of kp as a JSON Web Key with kid, alg ES256, and the
// certificate as x5c and x5t#S256 (what self_signed_tls_client_auth matches on).
func (kp *KeyPair) JWK(kid string) (map[string]any, error) {
	pub, ok := kp.Key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an EC key: %T", kp.Key.Public())
	}
	ecdh, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	raw := ecdh.Bytes() // 0x04 || X || Y
	sum := sha256.Sum256(kp.Cert.Raw)
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]any{
		"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]),
		"kid": kid, "alg": "ES256", "use": "sig",
		"x5c":      []string{base64.StdEncoding.EncodeToString(kp.Cert.Raw)},
		"x5t#S256": b64(sum[:]),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
