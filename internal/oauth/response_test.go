package oauth

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/cut"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		fields  ResponseFields
		want    response
		wantErr error  // errors.Is target, when the error is not an *Error
		wantAPI *Error // the refusal, when there is one
	}{
		{
			name:   "flat RFC 6749",
			status: 200,
			body:   `{"access_token":"abc.def-ghi","token_type":"Bearer","expires_in":3600}`,
			want:   response{AccessToken: "abc.def-ghi", TokenType: "Bearer", ExpiresIn: time.Hour},
		},
		{
			name:   "expires_in as numeric string, lower-case bearer",
			status: 200,
			body:   `{"access_token":"t","token_type":"bearer","expires_in":"86400"}`,
			want:   response{AccessToken: "t", TokenType: "Bearer", ExpiresIn: 24 * time.Hour},
		},
		{
			name:   "fractional expires_in",
			status: 200,
			body:   `{"access_token":"t","expires_in":1.5}`,
			want:   response{AccessToken: "t", TokenType: "Bearer", ExpiresIn: 1500 * time.Millisecond},
		},
		{
			name:   "JSON:API data.attributes found unaided",
			status: 200,
			body: `{"data":{"type":"oauth-token","attributes":{"access_token":"eyJ.x.y","token_type":"Bearer","expires_in":86400,
				"scope":"read:reports read:transactions"}},"meta":{"request_id":"r"},"jsonapi":{"version":"1.0"}}`,
			want: response{AccessToken: "eyJ.x.y", TokenType: "Bearer", Scope: "read:reports read:transactions", ExpiresIn: 24 * time.Hour},
		},
		{
			name:   "explicit pointers",
			status: 200,
			body:   `{"result":{"tok":"p1","life":"60","grants":["a","b"]}}`,
			fields: ResponseFields{AccessToken: "/result/tok", ExpiresIn: "/result/life", Scope: "/result/grants"},
			want:   response{AccessToken: "p1", TokenType: "Bearer", Scope: "a b", ExpiresIn: time.Minute},
		},
		{
			name:   "pointer with escapes and array index",
			status: 200,
			body:   `{"a/b":[{"t~":"p2"}],"expires_in":5}`,
			fields: ResponseFields{AccessToken: "/a~1b/0/t~0"},
			want:   response{AccessToken: "p2", TokenType: "Bearer", ExpiresIn: 5 * time.Second},
		},
		{
			name:   "no expires_in is not an error here",
			status: 200,
			body:   `{"access_token":"t"}`,
			want:   response{AccessToken: "t", TokenType: "Bearer"},
		},
		{name: "missing token", status: 200, body: `{"token_type":"Bearer","expires_in":3600}`, wantErr: ErrInvalidToken},
		{name: "empty token", status: 200, body: `{"access_token":"","expires_in":3600}`, wantErr: ErrInvalidToken},
		{name: "null token", status: 200, body: `{"access_token":null,"expires_in":3600}`, wantErr: ErrInvalidToken},
		{name: "token not a string", status: 200, body: `{"access_token":42}`, wantErr: errBadResponse},
		{name: "token with space", status: 200, body: `{"access_token":"a b","expires_in":1}`, wantErr: ErrInvalidToken},
		{name: "token with quote", status: 200, body: `{"access_token":"a\"b","expires_in":1}`, wantErr: ErrInvalidToken},
		{name: "token only padding", status: 200, body: `{"access_token":"==","expires_in":1}`, wantErr: ErrInvalidToken},
		{name: "token too large", status: 200, body: `{"access_token":"` + strings.Repeat("a", maxTokenLen+1) + `"}`, wantErr: ErrInvalidToken},
		{name: "expires_in zero", status: 200, body: `{"access_token":"t","expires_in":0}`, wantErr: ErrInvalidToken},
		{name: "expires_in negative", status: 200, body: `{"access_token":"t","expires_in":-5}`, wantErr: ErrInvalidToken},
		{name: "expires_in words", status: 200, body: `{"access_token":"t","expires_in":"soon"}`, wantErr: errBadResponse},
		{name: "expires_in absurd", status: 200, body: `{"access_token":"t","expires_in":1e30}`, wantErr: errBadResponse},
		{name: "expires_in object", status: 200, body: `{"access_token":"t","expires_in":{}}`, wantErr: errBadResponse},
		{name: "MAC token type", status: 200, body: `{"access_token":"t","token_type":"mac","expires_in":1}`, wantErr: ErrInvalidToken},
		{name: "not JSON", status: 200, body: `<html>hello</html>`, wantErr: errBadResponse},
		{name: "trailing garbage", status: 200, body: `{"access_token":"t"} {}`, wantErr: errBadResponse},
		{name: "JSON array", status: 200, body: `[1,2]`, wantErr: errBadResponse},
		{name: "empty body", status: 200, body: ``, wantErr: errBadResponse},
		{name: "bad pointer", status: 200, body: `{"access_token":"t"}`, fields: ResponseFields{AccessToken: "nope"}, wantErr: errBadResponse},
		{
			name: "RFC 6749 error", status: 401,
			body:    `{"error":"invalid_client","error_description":"Client authentication failed"}`,
			wantAPI: &Error{StatusCode: 401, Code: "invalid_client", Description: "Client authentication failed"},
		},
		{
			name: "RFC 6749 error with 200", status: 200,
			body:    `{"error":"invalid_grant"}`,
			wantAPI: &Error{StatusCode: 200, Code: "invalid_grant"},
		},
		{
			name: "JSON:API errors", status: 401,
			body:    `{"errors":[{"status":"401","code":"unauthorized","title":"Unauthorized","detail":"bad client"}]}`,
			wantAPI: &Error{StatusCode: 401, Code: "unauthorized", Description: "Unauthorized: bad client", bodyStatus: 401},
		},
		{
			name: "list of messages with 200", status: 200,
			body:    `{"status":0,"errors":["Access Denied"]}`,
			wantAPI: &Error{StatusCode: 200, Description: "Access Denied"},
		},
		{
			name: "error wins over a token", status: 200,
			body:    `{"access_token":"t","error":"server_error"}`,
			wantAPI: &Error{StatusCode: 200, Code: "server_error"},
		},
		{name: "empty errors list is no error", status: 200, body: `{"access_token":"t","errors":[]}`, want: response{AccessToken: "t", TokenType: "Bearer"}},
		{name: "5xx HTML", status: 503, body: "<html>\nService Unavailable</html>", wantAPI: &Error{StatusCode: 503, Description: "<html>"}},
		{name: "5xx empty", status: 502, body: "", wantAPI: &Error{StatusCode: 502}},
		{name: "4xx JSON without reason", status: 403, body: `{}`, wantAPI: &Error{StatusCode: 403}},
		{name: "4xx message", status: 400, body: `{"message":"grant_type missing"}`, wantAPI: &Error{StatusCode: 400, Description: "grant_type missing"}},
		{
			// Cut only once the client has redacted the secret from the whole text.
			name: "long reason is kept whole", status: 400,
			body:    `{"error":"invalid_request","error_description":"` + strings.Repeat("x", 500) + `"}`,
			wantAPI: &Error{StatusCode: 400, Code: "invalid_request", Description: strings.Repeat("x", 500)},
		},
		{
			name: "control characters are dropped", status: 400,
			body:    `{"error":"bad\u0007","error_description":"line1\nline2"}`,
			wantAPI: &Error{StatusCode: 400, Code: "bad", Description: "line1 line2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResponse(tt.status, []byte(tt.body), tt.fields)
			var apiErr *Error
			switch {
			case tt.wantAPI != nil:
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v, want refusal %v", err, tt.wantAPI)
				}
				if *apiErr != *tt.wantAPI {
					t.Fatalf("refusal = %#v, want %#v", *apiErr, *tt.wantAPI)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.As(err, &apiErr) {
					t.Fatalf("err = %v is a refusal, want a local failure", err)
				}
			default:
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		err       Error
		rejected  bool
		temporary bool
	}{
		{Error{StatusCode: 401}, true, false},
		{Error{StatusCode: 400, Code: "invalid_client"}, true, false},
		{Error{StatusCode: 400, Code: "unauthorized_client"}, true, false},
		{Error{StatusCode: 200, Description: "Access Denied"}, true, false},
		{Error{StatusCode: 400, Code: "invalid_scope"}, false, false},
		{Error{StatusCode: 429}, false, true},
		{Error{StatusCode: 500}, false, true},
		{Error{StatusCode: 503}, false, true},
		{Error{StatusCode: 404}, false, false},
	}
	for _, tt := range tests {
		if got := tt.err.CredentialsRejected(); got != tt.rejected {
			t.Errorf("%v: got CredentialsRejected %v, want %v", &tt.err, got, tt.rejected)
		}
		if got := tt.err.temporary(); got != tt.temporary {
			t.Errorf("%v: got Temporary %v, want %v", &tt.err, got, tt.temporary)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := seg(`{"alg":"RS256","typ":"JWT"}`)
	tests := []struct {
		name string
		tok  string
		want time.Time
		ok   bool
	}{
		{"integer exp", hdr + "." + seg(`{"exp":1710223631}`) + ".sig", time.Unix(1710223631, 0).UTC(), true},
		// Seed 001's tokens carry fractional seconds.
		{"fractional exp", hdr + "." + seg(`{"exp":1710223631.5}`) + ".sig", time.Unix(1710223631, 5e8).UTC(), true},
		{"no exp", hdr + "." + seg(`{"sub":"x"}`) + ".sig", time.Time{}, false},
		{"string exp", hdr + "." + seg(`{"exp":"soon"}`) + ".sig", time.Time{}, false},
		{"opaque", "0aba4911442f22c04b1f4f4e7cc50edb9856f213", time.Time{}, false},
		{"two parts", hdr + "." + seg(`{"exp":1}`), time.Time{}, false},
		{"bad base64", hdr + ".!!!.sig", time.Time{}, false},
		{"absurd exp", hdr + "." + seg(`{"exp":1e300}`) + ".sig", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jwtExpiry(tt.tok)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("jwtExpiry = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCutKeepsRunesWhole(t *testing.T) {
	long := strings.Repeat("é", maxReasonLen)
	if got := cut.String(long, maxReasonLen); !strings.HasSuffix(got, "…") || !isValidUTF8(got) || len(got) > maxReasonLen+len("…") {
		t.Fatalf("got %q, want whole runes ending in … within %d bytes", got, maxReasonLen+len("…"))
	}
	if got := clean(" a\nb\tc\x00 "); got != "a b c" {
		t.Fatalf("clean = %q, want %q", got, "a b c")
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestJWTClaims(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := seg(`{"alg":"RS256"}`)
	for _, tc := range []struct {
		claims string
		want   Claims
	}{
		{`{"exp":1795341690,"aud":"partner-api","iss":"https://auth.example.com"}`,
			Claims{Exp: time.Unix(1795341690, 0).UTC(), Audience: []string{"partner-api"}, Issuer: "https://auth.example.com"}},
		{`{"aud":["a","b"]}`, Claims{Audience: []string{"a", "b"}}},
		{`{"exp":1e300}`, Claims{}},
		// Terminal escapes (OSC window title, clear screen) are the provider's text
		// like any other: removed, and long claims bounded.
		{`{"iss":"\u001b]0;owned\u0007https://a.example\u001b[2J","aud":"` + strings.Repeat("x", 3000) + `"}`,
			Claims{Issuer: "]0;ownedhttps://a.example[2J", Audience: []string{strings.Repeat("x", maxClaimLen) + "…"}}},
		{`{"aud":["1","2","3","4","5","6","7","8","9","10","11","12"]}`,
			Claims{Audience: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "…"}}},
	} {
		got, ok := JWTClaims(hdr + "." + seg(tc.claims) + ".sig")
		if !ok || !got.Exp.Equal(tc.want.Exp) || got.Issuer != tc.want.Issuer || !reflect.DeepEqual(got.Audience, tc.want.Audience) {
			t.Errorf("JWTClaims(%s) = %+v, %v; want %+v, true", tc.claims, got, ok, tc.want)
		}
	}
	if _, ok := JWTClaims("opaque-token"); ok {
		t.Error("JWTClaims(opaque-token): got ok, want no claims")
	}
}
