package oauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// maxTokenLen is the largest access token accepted. The published JSON around it
// (type, times, scope, names) stays well under SSM's 8 KB Advanced-tier limit.
const maxTokenLen = 7 * 1024

// maxLifetime bounds expires_in so that adding it to a time cannot overflow;
// no real token lives for a century.
const maxLifetime = 100 * 365 * 24 * time.Hour

// maxUnixTime (9999-12-31T23:59:59Z) bounds a JWT exp claim for the same reason.
const maxUnixTime = 253402300799

// response is what a token endpoint's successful answer says.
type response struct {
	AccessToken string
	TokenType   string
	Scope       string
	// ExpiresIn is the lifetime the endpoint stated; zero when it stated none.
	ExpiresIn time.Duration
}

// parseResponse interprets a token endpoint's answer: the HTTP status and the body.
// It recognises refusals in RFC 6749 form ({"error": ...}), in JSON:API form
// ({"errors": [{...}]}) and as a list of messages ({"status":0,"errors":["Access Denied"]}),
// whatever the status, and finds the token's fields by the provider's JSON pointers,
// else flat (RFC 6749 §5.1), else under JSON:API's data.attributes.
//
// A refusal is returned as *Error; anything else that is not a usable token wraps
// ErrInvalidToken or errBadResponse.
func parseResponse(status int, body []byte, fields ResponseFields) (response, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		if status < 200 || status > 299 {
			return response{}, &Error{StatusCode: status, Description: bodyHint(body)}
		}
		return response{}, fmt.Errorf("%w: status %d, body is not JSON (%d bytes)", errBadResponse, status, len(body))
	}
	obj, _ := doc.(map[string]any)
	if e := refusal(status, obj); e != nil {
		return response{}, e
	}
	if status < 200 || status > 299 {
		return response{}, &Error{StatusCode: status}
	}
	if obj == nil {
		return response{}, fmt.Errorf("%w: status %d, body is not a JSON object", errBadResponse, status)
	}

	var r response
	var err error
	if r.AccessToken, err = stringField(obj, fields.AccessToken, "access_token"); err != nil {
		return response{}, err
	}
	if err := checkToken(r.AccessToken); err != nil {
		return response{}, err
	}
	if r.TokenType, err = stringField(obj, fields.TokenType, "token_type"); err != nil {
		return response{}, err
	}
	switch {
	case r.TokenType == "" || strings.EqualFold(r.TokenType, "bearer"):
		r.TokenType = "Bearer"
	default:
		// RFC 6749 §7.1: a client must not use a token whose type it does not understand.
		return response{}, fmt.Errorf("%w: token_type %q is not Bearer", ErrInvalidToken, clean(r.TokenType))
	}
	if r.Scope, err = scopeField(obj, fields.Scope); err != nil {
		return response{}, err
	}
	if r.ExpiresIn, err = expiresIn(obj, fields.ExpiresIn); err != nil {
		return response{}, err
	}
	return r, nil
}

// refusal returns the endpoint's error when the body carries one, whatever the status.
func refusal(status int, obj map[string]any) *Error {
	if obj == nil {
		return nil
	}
	if code, ok := obj["error"].(string); ok && code != "" {
		desc, _ := obj["error_description"].(string)
		return &Error{StatusCode: status, Code: clean(code), Description: clean(desc)}
	}
	list, ok := obj["errors"].([]any)
	if !ok || len(list) == 0 {
		if m, ok := obj["message"].(string); ok && (status < 200 || status > 299) {
			return &Error{StatusCode: status, Description: clean(m)}
		}
		return nil
	}
	e := &Error{StatusCode: status}
	var msgs []string
	for _, item := range list {
		switch v := item.(type) {
		case string:
			msgs = append(msgs, v)
		case map[string]any: // JSON:API error object
			if c, ok := v["code"].(string); ok && e.Code == "" {
				e.Code = clean(c)
			}
			if st, ok := v["status"].(string); ok && e.bodyStatus == 0 {
				e.bodyStatus, _ = strconv.Atoi(st)
			}
			title, _ := v["title"].(string)
			detail, _ := v["detail"].(string)
			switch {
			case title != "" && detail != "":
				msgs = append(msgs, title+": "+detail)
			case title+detail != "":
				msgs = append(msgs, title+detail)
			}
		}
	}
	e.Description = clean(strings.Join(msgs, "; "))
	if e.Code == "" && e.Description == "" {
		e.Description = "unspecified error"
	}
	return e
}

// lookup resolves an RFC 6901 pointer, or, when pointer is empty, finds name flat
// or under JSON:API's data.attributes.
func lookup(obj map[string]any, pointer, name string) (any, bool, error) {
	if pointer == "" {
		if v, ok := obj[name]; ok {
			return v, true, nil
		}
		if data, ok := obj["data"].(map[string]any); ok {
			if attrs, ok := data["attributes"].(map[string]any); ok {
				v, ok := attrs[name]
				return v, ok, nil
			}
		}
		return nil, false, nil
	}
	tokens, err := ParsePointer(pointer)
	if err != nil {
		return nil, false, err
	}
	var cur any = obj
	for _, tok := range tokens {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false, nil
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || (len(tok) > 1 && tok[0] == '0') {
				return nil, false, nil
			}
			cur = c[i]
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}

func stringField(obj map[string]any, pointer, name string) (string, error) {
	v, ok, err := lookup(obj, pointer, name)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", errBadResponse, name, err)
	}
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a string", errBadResponse, name)
	}
	return s, nil
}

// scopeField accepts RFC 6749's space-separated string and, leniently, a list.
func scopeField(obj map[string]any, pointer string) (string, error) {
	v, ok, err := lookup(obj, pointer, "scope")
	if err != nil {
		return "", fmt.Errorf("%w: scope: %v", errBadResponse, err)
	}
	if !ok || v == nil {
		return "", nil
	}
	switch s := v.(type) {
	case string:
		return clean(s), nil
	case []any:
		parts := make([]string, 0, len(s))
		for _, p := range s {
			if ps, ok := p.(string); ok {
				parts = append(parts, ps)
			}
		}
		return clean(strings.Join(parts, " ")), nil
	}
	return "", fmt.Errorf("%w: scope is neither a string nor a list", errBadResponse)
}

// expiresIn reads expires_in as a JSON number or a numeric string; zero when absent.
func expiresIn(obj map[string]any, pointer string) (time.Duration, error) {
	v, ok, err := lookup(obj, pointer, "expires_in")
	if err != nil {
		return 0, fmt.Errorf("%w: expires_in: %v", errBadResponse, err)
	}
	if !ok || v == nil {
		return 0, nil
	}
	var text string
	switch n := v.(type) {
	case json.Number:
		text = n.String()
	case string:
		text = strings.TrimSpace(n)
	default:
		return 0, fmt.Errorf("%w: expires_in is not a number", errBadResponse)
	}
	secs, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return 0, fmt.Errorf("%w: expires_in %q is not a number", errBadResponse, clean(text))
	}
	if secs <= 0 {
		return 0, fmt.Errorf("%w: expires_in %s: the token is already expired", ErrInvalidToken, clean(text))
	}
	if secs > maxLifetime.Seconds() {
		return 0, fmt.Errorf("%w: expires_in %s is beyond any plausible lifetime", errBadResponse, clean(text))
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// checkToken enforces RFC 6750 §2.1's b64token syntax, which is also what every
// consumer puts after "Bearer ", and a size that can be published.
func checkToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: access_token is missing or empty", ErrInvalidToken)
	}
	if len(tok) > maxTokenLen {
		return fmt.Errorf("%w: access_token is %d bytes, more than %d", ErrInvalidToken, len(tok), maxTokenLen)
	}
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return fmt.Errorf("%w: access_token is only padding", ErrInvalidToken)
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return fmt.Errorf("%w: access_token has a character RFC 6750 does not allow at byte %d", ErrInvalidToken, i)
		}
	}
	return nil
}

// Claims are the claims of a JWT access token that an operator checks before a
// provider goes live: when it expires, whom it is for, who issued it. They are read,
// not verified: the refresher is not the token's audience. Issuer and Audience are
// made fit for one line (no control characters) and bounded.
type Claims struct {
	// Exp is the exp claim; zero when absent or implausible.
	Exp time.Time
	// Audience is the aud claim: a string, or a list of them.
	Audience []string
	// Issuer is the iss claim.
	Issuer string
}

const (
	// maxClaimLen bounds the iss claim and each aud entry.
	maxClaimLen = 200
	// maxAudiences bounds the aud entries kept; a "…" entry marks the cut.
	maxAudiences = 10
)

// JWTClaims returns the claims of tok when it is a JWT (three base64url parts whose
// second is a JSON object).
func JWTClaims(tok string) (Claims, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, false
	}
	var raw struct {
		Exp json.Number     `json:"exp"`
		Aud json.RawMessage `json:"aud"`
		Iss string          `json:"iss"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Claims{}, false
	}
	// The claims are the provider's text, shown to operators: the same clean-up as
	// scope and error text, and bounded.
	c := Claims{Issuer: cut.String(clean(raw.Iss), maxClaimLen)}
	if secs, err := raw.Exp.Float64(); err == nil && secs > 0 && secs <= maxUnixTime {
		whole, frac := math.Modf(secs)
		c.Exp = time.Unix(int64(whole), int64(frac*1e9)).UTC()
	}
	var one string
	if json.Unmarshal(raw.Aud, &one) == nil && one != "" {
		c.Audience = []string{one}
	} else {
		_ = json.Unmarshal(raw.Aud, &c.Audience)
	}
	if len(c.Audience) > maxAudiences {
		c.Audience = append(c.Audience[:maxAudiences:maxAudiences], "…")
	}
	for i, a := range c.Audience {
		c.Audience[i] = cut.String(clean(a), maxClaimLen)
	}
	return c, true
}

// jwtExpiry returns the exp claim of a JWT, when tok is one with a plausible exp.
// The token is not verified: the refresher only needs to know when to renew it.
func jwtExpiry(tok string) (time.Time, bool) {
	c, ok := JWTClaims(tok)
	return c.Exp, ok && !c.Exp.IsZero()
}

// bodyHint describes a non-JSON error body: its first line, made safe.
func bodyHint(body []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(body), []byte("\n"))
	if len(line) == 0 {
		return ""
	}
	return clean(string(line))
}
