package oauthtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// oversizedPadding is the size of the padding field of an Oversized answer.
const oversizedPadding = 2 << 20

// Answer bodies. Field order follows the seed documents.
type (
	flatAnswer struct {
		Padding     string `json:"padding,omitempty"`
		TokenType   string `json:"token_type"`
		ExpiresIn   *int64 `json:"expires_in,omitempty"`
		AccessToken string `json:"access_token"`
	}
	cardlyticsAnswer struct {
		Padding     string `json:"padding,omitempty"`
		AccessToken string `json:"access_token"`
		ExpiresIn   *int64 `json:"expires_in,omitempty"`
		TokenType   string `json:"token_type"`
	}
	jsonAPIAnswer struct {
		Padding string `json:"padding,omitempty"`
		Data    struct {
			Type       string `json:"type"`
			Attributes struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   *int64 `json:"expires_in,omitempty"`
				Scope       string `json:"scope"`
			} `json:"attributes"`
		} `json:"data"`
		Meta struct {
			Timestamp string `json:"timestamp"`
			RequestID string `json:"request_id"`
			Version   string `json:"version"`
		} `json:"meta"`
		JSONAPI struct {
			Version string `json:"version"`
		} `json:"jsonapi"`
	}
	jsonAPIError struct {
		Status string `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
)

// issue answers a validated request with a new token; f may be Expired, EmptyToken,
// NoExpiry or Oversized, or NoFault.
func (x *exchange) issue(now time.Time, scope string, f Fault) {
	lifetime := x.sp.lifetime
	if x.p.Lifetime > 0 {
		lifetime = x.p.Lifetime
	}
	iat, exp := now, now.Add(lifetime)
	expiresIn := int64(lifetime / time.Second)
	expiresInPtr := &expiresIn
	switch f.Kind {
	case Expired:
		exp = now.Add(-time.Minute)
		iat = exp.Add(-lifetime)
		expiresIn = 0
	case NoExpiry:
		expiresInPtr = nil
	}

	var token string
	if f.Kind != EmptyToken {
		token = x.newToken(iat, exp, scope)
		x.s.mu.Lock()
		x.fp.issued = append(x.fp.issued, token)
		x.s.mu.Unlock()
	}
	var padding string
	if f.Kind == Oversized {
		padding = strings.Repeat("x", oversizedPadding)
	}

	var body any
	switch x.p.Dialect {
	case ECard:
		var a jsonAPIAnswer
		a.Padding = padding
		a.Data.Type = "oauth-token"
		a.Data.Attributes.AccessToken = token
		a.Data.Attributes.TokenType = "Bearer"
		a.Data.Attributes.ExpiresIn = expiresInPtr
		a.Data.Attributes.Scope = scope
		a.Meta.Timestamp = now.UTC().Format("2006-01-02T15:04:05.000Z")
		a.Meta.RequestID = fmt.Sprintf("req-%d-%s", now.UnixMilli(), strings.ToLower(rand.Text()[:7]))
		a.Meta.Version = "1.0.0"
		a.JSONAPI.Version = "1.0"
		body = a
	case Cardlytics:
		body = cardlyticsAnswer{Padding: padding, AccessToken: token, ExpiresIn: expiresInPtr, TokenType: "Bearer"}
	default:
		body = flatAnswer{Padding: padding, TokenType: "Bearer", ExpiresIn: expiresInPtr, AccessToken: token}
	}
	x.writeJSON(f.status(http.StatusOK), body)
}

// writeError answers e in the dialect's error shape with the given HTTP status.
func (x *exchange) writeError(status int, e *apiError) {
	var body any
	switch x.sp.errors {
	case errorsJSONAPI:
		body = struct {
			Errors []jsonAPIError `json:"errors"`
		}{[]jsonAPIError{{Status: strconv.Itoa(e.status), Title: http.StatusText(e.status), Detail: e.desc}}}
	case errorsStatus0:
		msg := e.desc
		if e.code == "invalid_client" {
			msg = "Access Denied"
		}
		body = struct {
			Status int      `json:"status"`
			Errors []string `json:"errors"`
		}{0, []string{msg}}
	default:
		body = struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{e.code, e.desc}
	}
	if x.sp.basic && status == http.StatusUnauthorized {
		x.w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	x.writeJSON(status, body)
}

func (x *exchange) writeJSON(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed struct types are marshalled
	}
	h := x.w.Header()
	h.Set("Content-Type", x.sp.contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	x.w.WriteHeader(status)
	x.w.Write(b)
}

// newToken returns a new random access token of the dialect's kind.
func (x *exchange) newToken(iat, exp time.Time, scope string) string {
	switch x.sp.token {
	case tokenECardJWT:
		return jwt(struct {
			Alg string `json:"alg"`
			Typ string `json:"typ"`
			Kid string `json:"kid"`
		}{"RS256", "JWT", "oauthtest"}, struct {
			Iss   string `json:"iss"`
			Sub   string `json:"sub"`
			Scope string `json:"scope"`
			Iat   int64  `json:"iat"`
			Exp   int64  `json:"exp"`
			Jti   string `json:"jti"`
		}{"oauthtest", x.p.ClientID, scope, iat.Unix(), exp.Unix(), randomHex(16)})
	case tokenPassportJWT:
		c := passportClaims{
			Aud:    x.p.ClientID,
			Jti:    randomHex(40),
			Iat:    numericDate{iat, x.sp.fractionalNum},
			Nbf:    numericDate{iat, x.sp.fractionalNum},
			Exp:    numericDate{exp, x.sp.fractionalNum},
			Sub:    "",
			Scopes: strings.Fields(scope),
		}
		if c.Scopes == nil {
			c.Scopes = []string{}
		}
		if x.p.Dialect == Booking {
			c.bookingClaims = &bookingClaims{UserID: randomUUID(), PartnerID: randomUUID()}
		}
		// JSON orders fields as {"typ","alg"}, as the seeds' tokens do.
		return jwt(struct {
			Typ string `json:"typ"`
			Alg string `json:"alg"`
		}{"JWT", "RS256"}, c)
	case tokenHex40:
		return randomHex(20)
	default:
		return base64.RawURLEncoding.EncodeToString(randomBytes(32))
	}
}

// passportClaims are the claims of a Laravel Passport client-credentials JWT, as in seed 001.
type passportClaims struct {
	Aud    string      `json:"aud"`
	Jti    string      `json:"jti"`
	Iat    numericDate `json:"iat"`
	Nbf    numericDate `json:"nbf"`
	Exp    numericDate `json:"exp"`
	Sub    string      `json:"sub"`
	Scopes []string    `json:"scopes"`
	*bookingClaims
}

type bookingClaims struct {
	UserID    string `json:"user_id"`
	PartnerID string `json:"partner_id"`
	IsTest    bool   `json:"is_test"`
}

// numericDate is a JWT NumericDate: whole seconds, or with microseconds when fractional.
type numericDate struct {
	t          time.Time
	fractional bool
}

// MarshalJSON writes seconds since the epoch, with a fraction when the dialect has one.
func (d numericDate) MarshalJSON() ([]byte, error) {
	if !d.fractional {
		return strconv.AppendInt(nil, d.t.Unix(), 10), nil
	}
	return fmt.Appendf(nil, "%d.%06d", d.t.Unix(), d.t.Nanosecond()/1000), nil
}

// jwt returns a JWS compact serialization of header and claims with a random
// 256-byte signature: it looks like RS256 but verifies against no key.
func jwt(header, claims any) string {
	h, err1 := json.Marshal(header)
	c, err2 := json.Marshal(claims)
	if err1 != nil || err2 != nil {
		panic(fmt.Sprint(err1, err2)) // fixed types only
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(randomBytes(256))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func randomUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// hasMediaType reports whether a Content-Type header is want, with at most a
// charset parameter of utf-8.
func hasMediaType(header, want string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != want {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return true
}

// acceptsJSON reports whether Accept headers list application/json explicitly.
func acceptsJSON(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

// jsonParams decodes a JSON object body; the fields the server reads must be strings.
func jsonParams(body []byte) (map[string]string, *apiError) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, badRequest("invalid_request", "The body is not a JSON object")
	}
	params := make(map[string]string)
	for _, k := range []string{"grant_type", "client_id", "client_secret", "scope"} {
		v, ok := raw[k]
		if !ok {
			continue
		}
		var s string
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) || json.Unmarshal(v, &s) != nil {
			return nil, badRequest("invalid_request", "%s must be a string", k)
		}
		params[k] = s
	}
	return params, nil
}

// echo quotes the request back as an echoing provider does: the body as received,
// the Authorization header, and the client credentials as the dialect decoded them.
func (x *exchange) echo() string {
	id, secret := "", ""
	if params, e := x.params(); e == nil {
		id, secret = params["client_id"], params["client_secret"]
	}
	if x.sp.basic {
		id, secret, _ = decodeBasic(x.r.Header.Get("Authorization"), x.p.BasicEncoding)
	}
	return fmt.Sprintf("request %s with Authorization %q for client %s secret %s", x.body, x.r.Header.Get("Authorization"), id, secret)
}

// issueEcho answers 200 with a token whose token_type or expires_in is the echo.
func (x *exchange) issueEcho(now time.Time, f Fault) {
	token := x.newToken(now, now.Add(time.Hour), "")
	echo := x.echo()
	answer := map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3600}
	if f.Kind == EchoTokenType {
		answer["token_type"] = echo
	} else {
		answer["expires_in"] = echo
	}
	x.writeJSON(f.status(http.StatusOK), answer)
}
