package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by definition (RFC 7517 §4.8), and Entra ID still reads it
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// PublicJWK is the JSON Web Key (RFC 7517) of a client's public key, as the
// authorization server registers it for private_key_jwt or
// self_signed_tls_client_auth: kid defaults to the key's RFC 7638 thumbprint, alg
// to RS256 for an RSA key and ES256 for a P-256 key, and a chain, whose leaf must
// hold the same key, adds x5c, x5t#S256 and x5t.
func PublicJWK(pub crypto.PublicKey, kid string, alg SigningAlg, chain []*x509.Certificate) (map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var key map[string]any
	var canonical string // RFC 7638 §3.2: the required members, in lexicographic order
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg == "" {
			alg = RS256
		}
		if alg != RS256 && alg != PS256 {
			return nil, fmt.Errorf("alg %s does not fit an RSA key (RS256, PS256)", alg)
		}
		n, e := b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
		key = map[string]any{"kty": "RSA", "n": n, "e": e}
		canonical = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, e, n)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("only EC keys on P-256 are supported (ES256)")
		}
		if alg == "" {
			alg = ES256
		}
		if alg != ES256 {
			return nil, fmt.Errorf("alg %s does not fit an EC P-256 key (ES256)", alg)
		}
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, err
		}
		x, y := b64(raw[1:33]), b64(raw[33:])
		key = map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
		canonical = fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":%q,"y":%q}`, x, y)
	default:
		return nil, fmt.Errorf("a %T key: want RSA or EC P-256", pub)
	}
	if kid == "" {
		sum := sha256.Sum256([]byte(canonical))
		kid = b64(sum[:])
	}
	key["kid"], key["alg"], key["use"] = kid, string(alg), "sig"
	if len(chain) > 0 {
		leaf := chain[0]
		lp, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !lp.Equal(pub) {
			return nil, errors.New("the certificate's public key is not the key's: give the certificate issued for this key")
		}
		x5c := make([]string, len(chain))
		for i, c := range chain {
			x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		s256 := sha256.Sum256(leaf.Raw)
		s1 := sha1.Sum(leaf.Raw)
		key["x5c"], key["x5t#S256"], key["x5t"] = x5c, b64(s256[:]), b64(s1[:])
	}
	return key, nil
}
