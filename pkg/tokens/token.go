package tokens

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Token is the published form of one provider's current access token.
type Token struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	IssuedAt    time.Time `json:"issued_at"`
	Scope       string    `json:"scope,omitempty"`
	Provider    string    `json:"provider"`
	// SecretVersion is the Secrets Manager version id of the client credentials the
	// token was obtained with, so a changed secret can be noticed. It is an id, not a secret.
	SecretVersion string `json:"secret_version,omitempty"`
	// RefusedSecretVersion, when set, is the current version of the client
	// credentials that the provider refused, so the token was obtained with the
	// previous one (AWSPREVIOUS). The refresher then does not retry that version
	// before the token is due, and reports the provider as degraded.
	RefusedSecretVersion string `json:"refused_secret_version,omitempty"`
}

// ErrMalformed is returned (wrapped) by Parse, and by Source, when a value is not a
// usable published token.
var ErrMalformed = errors.New("malformed published token")

// Marshal encodes t in the published form, with times in RFC 3339 UTC to the second.
func (t Token) Marshal() ([]byte, error) {
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Second)
	t.IssuedAt = t.IssuedAt.UTC().Truncate(time.Second)
	return json.Marshal(t)
}

// Parse decodes a published token. It rejects values without an access token or an expiry.
func Parse(data []byte) (Token, error) {
	var t Token
	if err := json.Unmarshal(data, &t); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrMalformed, jsonError(err))
	}
	switch {
	case t.AccessToken == "":
		return Token{}, fmt.Errorf("%w: no access_token", ErrMalformed)
	case t.ExpiresAt.IsZero():
		return Token{}, fmt.Errorf("%w: no expires_at", ErrMalformed)
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	return t, nil
}

// jsonError describes a decoding error without quoting the input, which holds a token.
func jsonError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("the value is a JSON %s, not an object", typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q is a JSON %s", typ.Field, typ.Value)
	case errors.As(err, new(*time.ParseError)):
		return "a time is not RFC 3339"
	default:
		return "invalid JSON"
	}
}

// Valid reports whether t has an access token and is not expired at now.
func (t Token) Valid(now time.Time) bool {
	return t.AccessToken != "" && now.Before(t.ExpiresAt)
}

// Fingerprint identifies an access token in logs without revealing it: the first
// 8 hex digits of its SHA-256.
func Fingerprint(accessToken string) string {
	if accessToken == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(accessToken))
	return hex.EncodeToString(sum[:4])
}

// String identifies t without revealing the access token, so a Token that ends up
// in a log line or an error message (%v, %+v, %s) shows only its fingerprint.
func (t Token) String() string {
	return fmt.Sprintf("token{provider:%s type:%s fingerprint:%s issued_at:%s expires_at:%s}",
		t.Provider, t.TokenType, Fingerprint(t.AccessToken),
		t.IssuedAt.UTC().Format(time.RFC3339), t.ExpiresAt.UTC().Format(time.RFC3339))
}

// GoString does the same for %#v.
func (t Token) GoString() string { return t.String() }

// LogValue does the same for log/slog.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", t.Provider), slog.String("fingerprint", Fingerprint(t.AccessToken)),
		slog.Time("expires_at", t.ExpiresAt))
}
