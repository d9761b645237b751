package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// Errors a token request can end in, for errors.Is.
var (
	// ErrInvalidToken means the endpoint answered without a usable access token:
	// none, an empty one, one with characters RFC 6750 does not allow, one too large
	// to publish, or one already expired.
	ErrInvalidToken = errors.New("no usable access token")
	// errNoExpiry means the answer says nothing of the token's lifetime and the
	// provider has no default_lifetime.
	errNoExpiry = errors.New("token lifetime unknown")
	// errBadResponse means the answer could not be understood at all.
	errBadResponse = errors.New("unreadable token response")
	// errInsecureURL means the token URL would send the client secret in clear text,
	// or elsewhere than the configured host.
	errInsecureURL = errors.New("insecure token URL")
	// ErrInvalidPointer means a response field's location is not an RFC 6901 JSON pointer.
	ErrInvalidPointer = errors.New("invalid JSON pointer")
	// errUnreachable means no answer came: the connection failed or broke, the TLS
	// handshake failed, the answer was not HTTP, or the endpoint did not answer in time.
	errUnreachable = errors.New("token endpoint unreachable")
)

// Bounds on text that comes from outside: enough to diagnose, too little to flood a
// log line, a result, an alarm or a failure queue.
const (
	// maxReasonLen bounds a provider's stated reason (an Error's Code or Description).
	maxReasonLen = 200
	// maxErrorLen bounds the text of every error the client returns.
	maxErrorLen = 512
)

// Error is a token endpoint's refusal: its HTTP status and its stated reason.
type Error struct {
	// StatusCode is the HTTP status; a refusal can come with 200. It is 0 when the
	// server refused the client certificate in the TLS handshake.
	StatusCode int
	// Code is the machine-readable reason, such as RFC 6749's "invalid_client".
	Code string
	// Description is the human-readable reason. In an error the client returns it
	// is redacted and cut to a sane length.
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
	if e.StatusCode == 0 {
		b.WriteString("token endpoint refused") // in the TLS handshake: no HTTP status
	} else {
		fmt.Fprintf(&b, "token endpoint answered %d", e.StatusCode)
	}
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

// temporary reports whether the same request may succeed later: 429 and 5xx.
func (e *Error) temporary() bool {
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

// clean makes provider-supplied text fit for one line: printable, no line breaks,
// trimmed. It does not cut: a secret must be redacted from the whole text before
// any cut, or a cut could leave the start of it behind.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// cleanError is what every error the client returns becomes: its text redacted and
// then bounded, keeping of the original only what callers may test (this package's
// sentinels, the context's errors, and a redacted copy of the endpoint's *Error),
// so that no unredacted text survives anywhere in its chain.
type cleanError struct {
	msg     string
	matches []error
	refusal *Error
}

// sentinels are the errors a caller may test a returned error against.
var sentinels = []error{ErrInvalidToken, errNoExpiry, errBadResponse, errInsecureURL, errUnreachable, errVerification, ErrClientAuth,
	context.Canceled, context.DeadlineExceeded}

// Error returns the redacted, bounded text.
func (e *cleanError) Error() string { return e.msg }

// Is reports whether the original error matched target, one of the sentinels.
func (e *cleanError) Is(target error) bool { return slices.Contains(e.matches, target) }

// As finds the redacted copy of the endpoint's refusal.
func (e *cleanError) As(target any) bool {
	if p, ok := target.(**Error); ok && e.refusal != nil {
		*p = e.refusal
		return true
	}
	return false
}

// sanitize is the one step every error of the client passes through: the secret,
// the private key and what was made from them for this call (made: assertions,
// signatures), in every form the redactor knows, are removed from the whole text
// first, and only then is the text bounded.
func sanitize(err error, cred Credentials, made ...string) error {
	if err == nil {
		return nil
	}
	r := newRedactor(cred, made...)
	out := &cleanError{msg: cut.String(clean(r.redact(err.Error())), maxErrorLen)}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			out.matches = append(out.matches, s)
		}
	}
	var oe *Error
	if errors.As(err, &oe) {
		c := *oe
		c.Code = cut.String(clean(r.redact(oe.Code)), maxReasonLen)
		c.Description = cut.String(clean(r.redact(oe.Description)), maxReasonLen)
		c.RetryAfter = cut.String(clean(r.redact(oe.RetryAfter)), 64)
		out.refusal = &c
	}
	return out
}

// Unreachable reports whether err says the token endpoint gave no answer at all: the
// connection failed or broke, the TLS handshake failed, or no answer came in time.
func Unreachable(err error) bool {
	return errors.Is(err, errUnreachable)
}
