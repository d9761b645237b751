package tokens_test

import (
	"regexp"
	"testing"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// parseErrors is every message Parse may return. None has room for a piece of the
// value, which holds a token: an error never quotes its input.
var parseErrors = regexp.MustCompile(`^malformed published token: (invalid JSON( at byte [0-9]+)?|` +
	`field "(access_token|token_type|expires_at|issued_at|scope|provider|secret_version|refused_secret_version)" is a JSON [a-z]+|` +
	`the value is a JSON [a-z]+, not an object|a time is not RFC 3339|no access_token|no expires_at)$`)

// FuzzParse feeds arbitrary values to the published token's decoder. It must not
// panic; what it accepts has an access token and an expiry; what it refuses, it
// refuses with ErrMalformed and a message from a closed set, so an error never
// quotes the value. Seed inputs are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"access_token":"abc","token_type":"Bearer","expires_at":"2026-11-23T10:00:00Z","issued_at":"2026-11-22T10:00:00Z","provider":"ecard"}`))
	f.Add([]byte(`{"access_token":"sekrit","expires_at":"tomorrow"}`))
	f.Add([]byte(`{"access_token":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := tokens.Parse(data)
		if err != nil {
			if !parseErrors.MatchString(err.Error()) {
				t.Fatalf("got message %q, want one of the closed set %s", err, parseErrors)
			}
			return
		}
		if tok.AccessToken == "" || tok.ExpiresAt.IsZero() || tok.TokenType == "" {
			t.Fatalf("accepted %v: want an access token, a type and an expiry, or an error", tok)
		}
	})
}
