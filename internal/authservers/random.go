package authservers

import (
	"crypto/rand"
	"encoding/base64"
)

// randomString is n bytes of randomness, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
