package oauth_test

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// TestJWKThumbprint holds the default kid to RFC 7638 §3.1's own example.
func TestJWKThumbprint(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	key, err := oauth.PublicJWK(pub, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := key["kid"], "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("got kid %v, want RFC 7638's thumbprint %s", got, want)
	}
	if got := key["alg"]; got != "RS256" {
		t.Errorf("got alg %v, want RS256 for an RSA key", got)
	}
}
