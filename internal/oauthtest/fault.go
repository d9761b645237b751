package oauthtest

import (
	"fmt"
	"time"
)

// FaultKind names a way in which a provider misbehaves.
type FaultKind string

// Fault kinds. Unless said otherwise a fault's answer replaces the normal one
// whatever the request was, and Fault.Status overrides its HTTP status.
const (
	// NoFault answers normally.
	NoFault FaultKind = ""
	// ServerError answers 500 (Fault.Status may say 502 or 503) with a small HTML
	// body, and Fault.RetryAfter as Retry-After when set.
	ServerError FaultKind = "server_error"
	// TooManyRequests answers 429 in the dialect's error shape, with
	// Fault.RetryAfter as Retry-After when set.
	TooManyRequests FaultKind = "too_many_requests"
	// Slow waits Fault.Delay and then answers normally. A zero Delay waits until the
	// client gives up (its request context ends) or the server is closed, and never answers.
	Slow FaultKind = "slow"
	// Garbage answers 200 with Content-Type application/json and a body that is not JSON.
	Garbage FaultKind = "garbage"
	// Oversized answers 200 with a well-formed success answer of 2 MiB: a "padding"
	// field comes before the token, so a client that reads at most 1 MiB finds no token.
	// The request is validated first; the token counts as issued.
	Oversized FaultKind = "oversized"
	// Redirect answers 307 (Fault.Status may say 301, 302, 303 or 308) with Location
	// {name}/token/redirected on the same server, which issues a token for a valid
	// request and never applies faults. A client must not follow it: Stats.Requests
	// counts the followed request too.
	Redirect FaultKind = "redirect"
	// ErrorWith200 answers the dialect's invalid-client error (RFC 6749 invalid_client,
	// JSON:API Unauthorized, or {"status":0,"errors":["Access Denied"]}) with HTTP 200.
	ErrorWith200 FaultKind = "error_with_200"
	// Expired validates the request and issues a token that is already expired:
	// expires_in 0 and, for JWT dialects, exp one minute in the past (iat = exp - lifetime).
	Expired FaultKind = "expired"
	// WrongCredentials answers the dialect's 401 as if the credentials were wrong.
	WrongCredentials FaultKind = "wrong_credentials"
	// EmptyToken validates the request and answers 200 with access_token "".
	EmptyToken FaultKind = "empty_token"
	// NoExpiry validates the request and answers without expires_in; a JWT still has exp.
	NoExpiry FaultKind = "no_expiry"

	// The echo faults quote the request back, as some providers do in their error
	// text, so that tests can prove a client's errors never carry the secret. Each
	// quotes the request body as received (form- or JSON-encoded), the Authorization
	// header (base64 for Basic), and the credentials as the dialect decoded them.

	// EchoError answers the dialect's 400 error with the request quoted in its
	// description (or message).
	EchoError FaultKind = "echo_error"
	// EchoTokenType answers 200 with a token whose token_type is the quoted request.
	EchoTokenType FaultKind = "echo_token_type"
	// EchoExpiresIn answers 200 with a token whose expires_in is the quoted request.
	EchoExpiresIn FaultKind = "echo_expires_in"
	// EchoStatusLine answers with a malformed HTTP status line made of the request
	// body, which Go's HTTP client quotes whole in its error.
	EchoStatusLine FaultKind = "echo_status_line"
	// HugeStatusLine answers with a status line of Fault.Size bytes (4 MiB when zero).
	HugeStatusLine FaultKind = "huge_status_line"
)

// Fault is injected into a provider with Server.SetFault.
type Fault struct {
	// Kind is what goes wrong.
	Kind FaultKind
	// Times is how many requests the fault applies to before the provider answers
	// normally again; 0 means every request. Every request to the token path counts,
	// valid or not.
	Times int
	// RetryAfter is sent as the Retry-After header by ServerError and TooManyRequests
	// ("2" or an HTTP date); empty sends none.
	RetryAfter string
	// Delay is how long Slow waits; see Slow.
	Delay time.Duration
	// Status, when not zero, overrides the HTTP status of the fault's answer.
	// Slow ignores it.
	Status int
	// Size is the length of a HugeStatusLine; 4 MiB when zero.
	Size int
}

func (f Fault) validate() error {
	switch f.Kind {
	case NoFault, ServerError, TooManyRequests, Slow, Garbage, Oversized, Redirect,
		ErrorWith200, Expired, WrongCredentials, EmptyToken, NoExpiry,
		EchoError, EchoTokenType, EchoExpiresIn, EchoStatusLine, HugeStatusLine:
	default:
		return fmt.Errorf("unknown fault kind %q", string(f.Kind))
	}
	switch {
	case f.Times < 0:
		return fmt.Errorf("fault Times %d is negative", f.Times)
	case f.Delay < 0:
		return fmt.Errorf("fault Delay %v is negative", f.Delay)
	case f.Size < 0:
		return fmt.Errorf("fault Size %d is negative", f.Size)
	case f.Status != 0 && (f.Status < 100 || f.Status > 999):
		return fmt.Errorf("fault Status %d is no HTTP status", f.Status)
	case f.Kind == Redirect && f.Status != 0 && (f.Status < 300 || f.Status > 399):
		return fmt.Errorf("fault Status %d is no redirect", f.Status)
	}
	return nil
}

func (f Fault) status(normal int) int {
	if f.Status != 0 {
		return f.Status
	}
	return normal
}
