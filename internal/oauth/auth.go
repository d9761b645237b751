package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint (RFC 7515 §4.1.7); it identifies, it does not protect
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionType is RFC 7523 §2.2's client_assertion_type.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid: well inside the five
// minutes that servers accept, long enough for a slow answer. Each request signs a
// new one, so a retry never replays an assertion (its jti is fresh too).
const AssertionLifetime = 2 * time.Minute

// minRSABits is the smallest RSA key the client signs with (RFC 7518 §3.3).
const minRSABits = 2048

// ErrClientAuth means the client could not authenticate as its method says: a field of
// the secret is missing or unusable, or the key does not fit the algorithm. It is
// final: the same credentials fail the same way on every attempt.
var ErrClientAuth = errors.New("client authentication")

// sent collects what the client sent or made for one Token call that is as secret
// as the client secret: each assertion and the raw signatures a Signer returned.
// The redactor removes them from every error of that call.
type sent struct {
	mu   sync.Mutex
	list []string
}

func (s *sent) add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range v {
		if x != "" {
			s.list = append(s.list, x)
		}
	}
}

func (s *sent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

// checkCredentials says which field of the secret the method needs and lacks.
func checkCredentials(m AuthMethod, cred Credentials) error {
	missing := func(what string) error { return fmt.Errorf("%w: %s needs %s", ErrClientAuth, m, what) }
	switch {
	case cred.ClientID == "":
		return fmt.Errorf("%w: the secret's client_id is empty", ErrClientAuth)
	case m == PrivateKeyJWT:
		if cred.Signer == nil && cred.PrivateKey == "" {
			return missing("the secret's private_key field (PEM), or a signing_key")
		}
	case m.MutualTLS():
		if cred.Certificate == "" || cred.PrivateKey == "" {
			return missing("the secret's certificate (PEM chain) and private_key (PEM) fields")
		}
	case cred.ClientSecret == "":
		return missing("the secret's client_secret field")
	}
	return nil
}

// assertion signs a client assertion for e (RFC 7523 §2.2, OIDC Core §9): iss and sub
// the client id, aud the assertion audience, a fresh random jti, iat now and exp
// AssertionLifetime later. With PrivateKeyJWT and a certificate, the header carries
// the leaf's x5t#S256 and x5t thumbprints, by which Entra ID finds the key.
func assertion(e Endpoint, cred Credentials, now time.Time, rec *sent) (string, error) {
	key, err := signingKey(e, cred, rec)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if e.KeyID != "" {
		opts = opts.WithHeader("kid", e.KeyID)
	}
	if e.AuthMethod == PrivateKeyJWT && cred.Certificate != "" {
		leaf, err := leafCertificate(cred.Certificate)
		if err != nil {
			return "", err
		}
		s256 := sha256.Sum256(leaf.Raw)
		s1 := sha1.Sum(leaf.Raw) //nolint:gosec // see the import
		opts = opts.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s256[:])).
			WithHeader("x5t", base64.RawURLEncoding.EncodeToString(s1[:]))
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrClientAuth, e.AuthMethod, err)
	}
	aud := e.AssertionAudience
	if aud == "" {
		aud = e.TokenURL.String()
	}
	claims := jwt.Claims{
		Issuer:   cred.ClientID,
		Subject:  cred.ClientID,
		Audience: jwt.Audience{aud},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		if errors.Is(err, jose.ErrInvalidKeySize) {
			return "", fmt.Errorf("%w: %s with %s needs a client_secret of at least 32 bytes (RFC 7518 §3.2)", ErrClientAuth, e.AuthMethod, HS256)
		}
		return "", fmt.Errorf("%w: sign the %s assertion: %v", ErrClientAuth, e.AuthMethod, err)
	}
	rec.add(s, s[strings.LastIndexByte(s, '.')+1:])
	return s, nil
}

// signingKey is the key that signs e's assertion, with its algorithm checked
// against the key.
func signingKey(e Endpoint, cred Credentials, rec *sent) (jose.SigningKey, error) {
	if e.AuthMethod == ClientSecretJWT {
		if e.SigningAlg != "" && e.SigningAlg != HS256 {
			return jose.SigningKey{}, fmt.Errorf("%w: %s signs with %s, not %s", ErrClientAuth, ClientSecretJWT, HS256, e.SigningAlg)
		}
		return jose.SigningKey{Algorithm: jose.HS256, Key: []byte(cred.ClientSecret)}, nil
	}
	if cred.Signer != nil {
		alg, err := keyAlg(e.SigningAlg, cred.Signer.Public(), "the signing key")
		if err != nil {
			return jose.SigningKey{}, err
		}
		// cryptosigner turns an ECDSA signature from ASN.1 DER into JOSE's r||s
		// (RFC 7518 §3.4).
		return jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(recording{cred.Signer, rec})}, nil
	}
	key, err := ParsePrivateKey(cred.PrivateKey)
	if err != nil {
		return jose.SigningKey{}, err
	}
	alg, err := keyAlg(e.SigningAlg, key.Public(), "the secret's private_key")
	if err != nil {
		return jose.SigningKey{}, err
	}
	// The key itself, not a crypto.Signer: go-jose then signs PS256 with a salt as
	// long as the hash, as RFC 7518 §3.5 asks.
	return jose.SigningKey{Algorithm: alg, Key: key}, nil
}

// keyAlg checks alg against the public key, or picks the key's default when alg is
// empty: RS256 for RSA, ES256 for P-256.
func keyAlg(alg SigningAlg, pub crypto.PublicKey, what string) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("%w: %s is an RSA key of %d bits; at least %d are needed", ErrClientAuth, what, k.N.BitLen(), minRSABits)
		}
		switch alg {
		case "", RS256:
			return jose.RS256, nil
		case PS256:
			return jose.PS256, nil
		}
		return "", fmt.Errorf("%w: %s is an RSA key; signing_alg %s needs an EC P-256 key (RS256 or PS256 sign with RSA)", ErrClientAuth, what, alg)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: %s is an EC key on %s; ES256 needs P-256", ErrClientAuth, what, k.Curve.Params().Name)
		}
		if alg == "" || alg == ES256 {
			return jose.ES256, nil
		}
		return "", fmt.Errorf("%w: %s is an EC P-256 key; signing_alg %s needs an RSA key (ES256 signs with P-256)", ErrClientAuth, what, alg)
	}
	return "", fmt.Errorf("%w: %s is a %T, neither RSA nor EC P-256", ErrClientAuth, what, pub)
}

// ParsePrivateKey reads an RSA or EC P-256 private key from PEM: PKCS#8 ("PRIVATE
// KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"). Its errors never
// quote the text.
func ParsePrivateKey(s string) (crypto.Signer, error) {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w: private_key holds no PEM private key (PKCS#8 PRIVATE KEY, PKCS#1 RSA PRIVATE KEY or SEC1 EC PRIVATE KEY)", ErrClientAuth)
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue // EC PARAMETERS before the key, say
		}
		if err != nil {
			// x509's messages say what is wrong with the structure, never its bytes.
			return nil, fmt.Errorf("%w: private_key: %s block: %v", ErrClientAuth, b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%w: private_key is a %T; use an RSA or EC P-256 key", ErrClientAuth, key)
	}
}

// ParseCertificates reads a PEM chain, leaf first.
func ParseCertificates(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrClientAuth, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: certificate holds no PEM CERTIFICATE", ErrClientAuth)
	}
	return out, nil
}

func leafCertificate(s string) (*x509.Certificate, error) {
	chain, err := ParseCertificates(s)
	if err != nil {
		return nil, err
	}
	return chain[0], nil
}

// recording passes signing to a crypto.Signer held elsewhere (a KMS key) and keeps
// each signature it returns for the redactor: an ECDSA signature comes back in DER,
// which is not the form the assertion carries.
type recording struct {
	crypto.Signer
	rec *sent
}

func (r recording) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := r.Signer.Sign(rnd, digest, opts)
	if err == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			r.rec.add(enc.EncodeToString(sig))
		}
	}
	return sig, err
}

// mutualTLS returns a copy of hc whose transport presents cred's certificate chain
// and key in every handshake (RFC 8705 §2), and a function that closes its idle
// connections. Every call makes a new transport: a connection that presented one
// provider's certificate is never reused for another's request.
func mutualTLS(hc *http.Client, cred Credentials) (*http.Client, func(), error) {
	cert, err := tls.X509KeyPair([]byte(cred.Certificate), []byte(cred.PrivateKey))
	if err != nil {
		// crypto/tls names what is missing or mismatched, never the bytes.
		return nil, nil, fmt.Errorf("%w: certificate and private_key: %v", ErrClientAuth, err)
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = defaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, nil, fmt.Errorf("%w: mutual TLS needs an *http.Transport, not a %T", ErrClientAuth, hc.Transport)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// Always present the certificate, whatever CAs the server names as acceptable:
	// a self-signed certificate is issued by none of them, and the server decides.
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	out := *hc
	out.Transport = tr
	return &out, tr.CloseIdleConnections, nil
}

// certificateRefused recognises a TLS alert by which a server refuses the client's
// certificate (RFC 8446 §6.2): bad, unsupported, revoked, expired or unknown, of an
// unknown CA, access denied, or none presented. Over TCP, crypto/tls reports a
// peer's alert as a net.OpError "remote error" of an unexported type, so its text
// is what tells.
func certificateRefused(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48, 49, 116:
			return true
		}
		return false
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	switch op.Err.Error() {
	case "tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate", "tls: expired certificate",
		"tls: unknown certificate", "tls: unknown certificate authority", "tls: access denied", "tls: certificate required":
		return true
	}
	return false
}
