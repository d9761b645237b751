package oauth

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// AuthMethod says how a client authenticates to the token endpoint (RFC 6749
// §2.3.1; names as in RFC 7591's token_endpoint_auth_method registry).
type AuthMethod string

// Client authentication methods. The zero value means ClientSecretPost.
const (
	// ClientSecretPost sends client_id and client_secret in the request body.
	ClientSecretPost AuthMethod = "client_secret_post"
	// ClientSecretBasic sends them in an HTTP Basic Authorization header.
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// PrivateKeyJWT sends a JWT assertion signed with the client's private key
	// (RFC 7523 §2.2, OIDC Core §9): Credentials.Signer, else Credentials.PrivateKey.
	PrivateKeyJWT AuthMethod = "private_key_jwt"
	// ClientSecretJWT sends a JWT assertion signed with HS256 and the client secret.
	ClientSecretJWT AuthMethod = "client_secret_jwt"
	// TLSClientAuth presents a CA-issued client certificate in the TLS handshake
	// (RFC 8705 §2.1) and sends only client_id in the body.
	TLSClientAuth AuthMethod = "tls_client_auth"
	// SelfSignedTLSClientAuth presents a self-signed client certificate that the
	// server knows from the client's registration (RFC 8705 §2.2); the client side
	// is the same as TLSClientAuth.
	SelfSignedTLSClientAuth AuthMethod = "self_signed_tls_client_auth"
)

// AuthMethods lists every method the client speaks, in the order documented.
func AuthMethods() []AuthMethod {
	return []AuthMethod{ClientSecretPost, ClientSecretBasic, PrivateKeyJWT, ClientSecretJWT, TLSClientAuth, SelfSignedTLSClientAuth}
}

// SignsAssertion reports whether m authenticates with a JWT assertion.
func (m AuthMethod) SignsAssertion() bool { return m == PrivateKeyJWT || m == ClientSecretJWT }

// MutualTLS reports whether m authenticates with a client certificate.
func (m AuthMethod) MutualTLS() bool { return m == TLSClientAuth || m == SelfSignedTLSClientAuth }

// SigningAlg is a JWS algorithm (RFC 7518 §3.1) for a client assertion.
type SigningAlg string

// The assertion algorithms the client signs with. The zero value means RS256 for an
// RSA key, ES256 for a P-256 key, and HS256 for ClientSecretJWT.
const (
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256.
	RS256 SigningAlg = "RS256"
	// PS256 is RSASSA-PSS with SHA-256, its salt as long as the hash.
	PS256 SigningAlg = "PS256"
	// ES256 is ECDSA on P-256 with SHA-256.
	ES256 SigningAlg = "ES256"
	// HS256 is HMAC with SHA-256, keyed with the client secret.
	HS256 SigningAlg = "HS256"
)

// BasicEncoding says how client_id and client_secret are put into an HTTP Basic header.
type BasicEncoding string

// Basic header encodings. The zero value means BasicForm.
const (
	// BasicForm form-encodes id and secret before joining them with ':' and base64,
	// as RFC 6749 §2.3.1 requires; strict servers decode them that way.
	BasicForm BasicEncoding = "form"
	// BasicRaw joins them unencoded, as plain RFC 7617 does, for servers that expect that.
	BasicRaw BasicEncoding = "raw"
)

// RequestFormat is the encoding of the token request body.
type RequestFormat string

// Request body formats. The zero value means FormRequest.
const (
	// FormRequest is application/x-www-form-urlencoded, as RFC 6749 §4.4.2 specifies.
	FormRequest RequestFormat = "form"
	// JSONRequest is a JSON object with the same fields, which some providers require.
	JSONRequest RequestFormat = "json"
)

// ResponseFields are RFC 6901 JSON pointers to the fields of a token response.
// An empty pointer means "find it unaided": the flat RFC 6749 field, or the same
// field under JSON:API's data.attributes.
type ResponseFields struct {
	// AccessToken locates the token itself.
	AccessToken string
	// TokenType locates the token type (usually "Bearer").
	TokenType string
	// ExpiresIn locates the lifetime in seconds.
	ExpiresIn string
	// Scope locates the granted scope, which may differ from the requested one.
	Scope string
}

// Endpoint describes a token endpoint and the dialect of the client-credentials
// grant it speaks, as golang.org/x/oauth2's Endpoint and AuthStyle do for the
// standard dialect. Every zero field means the RFC 6749 default.
type Endpoint struct {
	// TokenURL is the token endpoint: https, or http only to a loopback host.
	TokenURL *url.URL
	// AuthMethod is how the client authenticates; "" means ClientSecretPost.
	AuthMethod AuthMethod
	// BasicEncoding only matters with ClientSecretBasic; "" means BasicForm.
	BasicEncoding BasicEncoding
	// RequestFormat is the body encoding; "" means FormRequest.
	RequestFormat RequestFormat
	// Scope is sent as the scope parameter when not empty (space-separated, RFC 6749 §3.3).
	Scope string
	// Audience is sent as the audience parameter when not empty.
	Audience string
	// ExtraParams are added to the request body; reserved names (ReservedParam) are ignored.
	ExtraParams map[string]string
	// Headers are added to the token request; reserved names (ReservedHeader) are overridden.
	Headers map[string]string
	// Response locates the fields of the token response.
	Response ResponseFields
	// DefaultLifetime is assumed when an answer has no expires_in and the token is no
	// JWT with an exp claim. Zero means such an answer is an error.
	DefaultLifetime time.Duration
	// SigningAlg signs the client assertion of PrivateKeyJWT and ClientSecretJWT;
	// "" means the key's default (see SigningAlg).
	SigningAlg SigningAlg
	// KeyID, when set, is the assertion's JWS "kid" header.
	KeyID string
	// AssertionAudience is the assertion's "aud"; "" means TokenURL.
	AssertionAudience string
}

// reservedParams are body fields the client sets from other settings; overriding
// them would send two values or silently replace one.
var reservedParams = map[string]string{
	"grant_type":            "the grant is always client_credentials",
	"client_id":             "it comes from the client credentials",
	"client_secret":         "it comes from the client credentials",
	"scope":                 "use the scope setting",
	"client_assertion":      "the client signs it for private_key_jwt and client_secret_jwt",
	"client_assertion_type": "the client sets it for private_key_jwt and client_secret_jwt",
	"audience":              "use the audience setting",
}

// ReservedParam reports whether name is a body field the client sets itself, and why.
func ReservedParam(name string) (why string, reserved bool) {
	why, reserved = reservedParams[name]
	return why, reserved
}

// reservedHeaders are set by the client or by net/http; a configured value would be
// overwritten or would contradict the body actually sent. Keys are lower case.
var reservedHeaders = map[string]string{
	"authorization":     "the client sets it for client_secret_basic",
	"content-type":      "the client sets it from the request format",
	"content-length":    "the HTTP client sets it",
	"host":              "it comes from the token URL",
	"transfer-encoding": "the HTTP client sets it",
}

// ReservedHeader reports whether name (any case) is a header the client or net/http
// sets itself, and why.
func ReservedHeader(name string) (why string, reserved bool) {
	why, reserved = reservedHeaders[strings.ToLower(name)]
	return why, reserved
}

// isLoopback reports whether host cannot leave the machine (localhost, 127.0.0.0/8,
// ::1): the only hosts a token request may reach over plain HTTP, for local tests
// and fakes.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// CheckTokenURL says why the client would not send client credentials to u: a
// scheme other than https (http only to a loopback host), user info, a fragment.
// It returns nil for a URL the client uses. Its messages never echo the URL, which
// may carry credentials in its user info or query; the client reports them
// wrapped in errInsecureURL.
func CheckTokenURL(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("no token URL")
	case u.Scheme == "" || u.Opaque != "" || u.Host == "":
		return errors.New("must be an absolute URL such as https://auth.example.com/oauth/token")
	case u.User != nil:
		return errors.New("must not contain user info (user:password@); credentials come from the client credentials")
	case u.Fragment != "" || u.RawFragment != "":
		return errors.New("must not contain a fragment (#...); it is never sent to the server")
	case u.Hostname() == "":
		return errors.New("has no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("http is allowed only for a loopback host (127.0.0.0/8, ::1, localhost), not %q; token requests need https", u.Hostname())
	default:
		return fmt.Errorf("scheme %q: token requests need https", u.Scheme)
	}
}

// CheckScope applies RFC 6749 §3.3: scope tokens of printable ASCII other than '"'
// and '\', separated by single spaces.
func CheckScope(s string) error {
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			return fmt.Errorf("%q: separate scopes by single spaces, with none at either end", s)
		}
		for _, c := range tok {
			if !(c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E) {
				return fmt.Errorf("%q: %q is not allowed in a scope (RFC 6749 §3.3)", s, c)
			}
		}
	}
	return nil
}

// pointerUnescaper decodes reference tokens. A single left-to-right pass is what
// RFC 6901 §4 asks for: "~01" must become "~1", not "/".
var pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")

// ParsePointer splits an RFC 6901 JSON pointer into its unescaped reference tokens.
// "" is the whole document and yields no tokens; "/" yields one empty token (the
// member named ""), as the RFC says. Array indexes are returned as strings: only the
// document being resolved can tell whether a token names a member or an element.
//
// It is hand-written because RFC 6901 parsing is twenty lines and the well-known
// pointer libraries bring resolvers and JSON Patch with them; configuration checks
// pointers with it and the client resolves them with it, so both agree.
func ParsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != '/' {
		return nil, fmt.Errorf("%w %q: must be empty or start with \"/\"", ErrInvalidPointer, s)
	}
	tokens := strings.Split(s[1:], "/")
	for i, t := range tokens {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%w %q: \"~\" must be followed by 0 or 1 (write \"~0\" for a literal \"~\")", ErrInvalidPointer, s)
			}
		}
		tokens[i] = pointerUnescaper.Replace(t)
	}
	return tokens, nil
}
