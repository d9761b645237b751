package oauth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Errors a token request can end in, for errors.Is.
var (
	// ErrInvalidToken means the endpoint answered without a usable access token:
	// none, an empty one, one with characters RFC 6750 does not allow, one too large
	// to publish, or one already expired.
	ErrInvalidToken = errors.New("no usable access token")
	// ErrNoExpiry means the answer says nothing of the token's lifetime and the
	// provider has no default_lifetime.
	ErrNoExpiry = errors.New("token lifetime unknown")
	// ErrBadResponse means the answer could not be understood at all.
	ErrBadResponse = errors.New("unreadable token response")
	// ErrInsecureURL means the token URL would send the client secret in clear text,
	// or elsewhere than the configured host.
	ErrInsecureURL = errors.New("insecure token URL")
	// ErrInvalidPointer means a response field's location is not an RFC 6901 JSON pointer.
	ErrInvalidPointer = errors.New("invalid JSON pointer")
)

// maxReasonLen bounds how much of a provider's error text reaches a message:
// enough to diagnose, too little to flood a log line or an alarm.
const maxReasonLen = 200

// Error is a token endpoint's refusal: its HTTP status and its stated reason.
type Error struct {
	// StatusCode is the HTTP status; a refusal can come with 200.
	StatusCode int
	// Code is the machine-readable reason, such as RFC 6749's "invalid_client".
	Code string
	// Description is the human-readable reason, cut to a sane length.
	Description string
	// RetryAfter is the wait the endpoint asked for, if any.
	RetryAfter string
	// bodyStatus is the status a JSON:API error object states for itself, which
	// can differ from the HTTP status (a 200 carrying a "401" error).
	bodyStatus int
}

// Error says what the endpoint answered: status, code and reason.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint answered %d", e.StatusCode)
	switch {
	case e.Code != "" && e.Description != "":
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Description)
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", e.Code)
	case e.Description != "":
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 429 and 5xx.
func (e *Error) Temporary() bool {
	return e.StatusCode == 429 || e.StatusCode >= 500
}

// CredentialsRejected reports whether the endpoint refused the client's credentials,
// as opposed to failing for another reason. The refresher then tries the previous
// version of a just-rotated secret.
func (e *Error) CredentialsRejected() bool {
	switch strings.ToLower(e.Code) {
	case "invalid_client", "unauthorized_client", "access_denied", "access denied":
		return true
	}
	if e.StatusCode == 401 || e.bodyStatus == 401 {
		return true
	}
	return strings.EqualFold(e.Description, "access denied")
}

// reason makes provider-supplied text safe to show: printable, one line, bounded,
// and without any of the given secrets in it (an endpoint may echo what it was sent).
func reason(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxReasonLen {
		cut := maxReasonLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
