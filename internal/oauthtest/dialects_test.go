package oauthtest

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// TestDialectsAnswerLikeSeeds checks that a correct request gets exactly the answer
// shape its seed document shows.
func TestDialectsAnswerLikeSeeds(t *testing.T) {
	tests := []struct {
		dialect     Dialect
		scope       string // requested
		contentType string
		keys        []string // top-level keys in order
		expiresIn   string
		checkToken  func(t *testing.T, p Provider, token string)
		checkOther  func(t *testing.T, body []byte)
	}{
		{
			dialect:     ECard,
			contentType: "application/vnd.api+json",
			keys:        []string{"data", "meta", "jsonapi"},
			expiresIn:   "86400",
			checkToken: func(t *testing.T, p Provider, token string) {
				header, claims := jwtParts(t, token)
				if got := keys(t, header); !slices.Equal(got, []string{"alg", "typ", "kid"}) {
					t.Errorf("got JWT header keys %v, want [alg typ kid]", got)
				}
				if !strings.HasPrefix(token, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIs") {
					t.Errorf("got a JWT starting %.40s, want one starting like seed 000's", token)
				}
				c := object(t, claims)
				if c["sub"] != p.ClientID || c["scope"] != "read:reports read:transactions export:reports" {
					t.Errorf("got sub %v, scope %v; want %q, %q", c["sub"], c["scope"], p.ClientID, "read:reports read:transactions export:reports")
				}
				if c["iat"] != json.Number("1795341600") || c["exp"] != json.Number("1795428000") {
					t.Errorf("iat %v exp %v, want 1795341600 and 1795428000", c["iat"], c["exp"])
				}
			},
			checkOther: func(t *testing.T, body []byte) {
				data := field(t, body, "data")
				if got := keys(t, data); !slices.Equal(got, []string{"type", "attributes"}) {
					t.Errorf("got data keys %v, want [type attributes]", got)
				}
				if string(field(t, data, "type")) != `"oauth-token"` {
					t.Errorf("got data.type %s, want \"oauth-token\"", field(t, data, "type"))
				}
				attrs := field(t, data, "attributes")
				if got := keys(t, attrs); !slices.Equal(got, []string{"access_token", "token_type", "expires_in", "scope"}) {
					t.Errorf("got attributes keys %v, want [access_token token_type expires_in scope]", got)
				}
				if string(field(t, attrs, "token_type")) != `"Bearer"` ||
					string(field(t, attrs, "scope")) != `"read:reports read:transactions export:reports"` {
					t.Errorf("got attributes %s, want token_type Bearer and the seed's scope", attrs)
				}
				meta := field(t, body, "meta")
				if got := keys(t, meta); !slices.Equal(got, []string{"timestamp", "request_id", "version"}) {
					t.Errorf("got meta keys %v, want [timestamp request_id version]", got)
				}
				m := object(t, meta)
				if m["timestamp"] != "2026-11-22T10:00:00.583Z" || m["version"] != "1.0.0" ||
					!regexp.MustCompile(`^req-1795341600583-[a-z2-7]{7}$`).MatchString(m["request_id"].(string)) {
					t.Errorf("got meta %s, want the seed's timestamp, version 1.0.0 and a req-1795341600583-… request id", meta)
				}
				if string(field(t, body, "jsonapi")) != `{"version":"1.0"}` {
					t.Errorf("got jsonapi %s, want {\"version\":\"1.0\"}", field(t, body, "jsonapi"))
				}
			},
		},
		{
			dialect:     Booking,
			contentType: "application/json",
			keys:        []string{"token_type", "expires_in", "access_token"},
			expiresIn:   "3600",
			checkToken: func(t *testing.T, p Provider, token string) {
				header, claims := jwtParts(t, token)
				if string(header) != `{"typ":"JWT","alg":"RS256"}` {
					t.Errorf("got JWT header %s, want {\"typ\":\"JWT\",\"alg\":\"RS256\"}", header)
				}
				want := []string{"aud", "jti", "iat", "nbf", "exp", "sub", "scopes", "user_id", "partner_id", "is_test"}
				if got := keys(t, claims); !slices.Equal(got, want) {
					t.Errorf("claims keys %v, want %v", got, want)
				}
				c := object(t, claims)
				// Fractional NumericDates, exactly as seed 001's token has them.
				if c["iat"] != json.Number("1795341600.583112") || c["nbf"] != c["iat"] ||
					c["exp"] != json.Number("1795345200.583112") {
					t.Errorf("got iat %v nbf %v exp %v, want 1795341600.583112 twice and 1795345200.583112", c["iat"], c["nbf"], c["exp"])
				}
				if c["aud"] != p.ClientID || c["sub"] != "" || len(c["jti"].(string)) != 80 || c["is_test"] != false {
					t.Errorf("got claims %v, want aud %q, empty sub, an 80-character jti, is_test false", c, p.ClientID)
				}
				if s, ok := c["scopes"].([]any); !ok || len(s) != 0 {
					t.Errorf("scopes %v, want []", c["scopes"])
				}
			},
		},
		{
			dialect:     OpenCard,
			scope:       "organizations-read organizations-write webhooks-write",
			contentType: "application/json",
			keys:        []string{"token_type", "expires_in", "access_token"},
			expiresIn:   "31536000",
			checkToken: func(t *testing.T, p Provider, token string) {
				if !strings.HasPrefix(token, "eyJ0eXAiOiJKV1QiLCJhbGc") {
					t.Errorf("got a JWT starting %.40s, want one starting like seed 002's", token)
				}
				_, claims := jwtParts(t, token)
				want := []string{"aud", "jti", "iat", "nbf", "exp", "sub", "scopes"}
				if got := keys(t, claims); !slices.Equal(got, want) {
					t.Errorf("claims keys %v, want %v", got, want)
				}
				c := object(t, claims)
				if c["iat"] != json.Number("1795341600") || c["exp"] != json.Number("1826877600") {
					t.Errorf("got iat %v exp %v, want 1795341600 and 1826877600", c["iat"], c["exp"])
				}
				if got := c["scopes"].([]any); len(got) != 3 || got[0] != "organizations-read" || got[2] != "webhooks-write" {
					t.Errorf("got scopes %v, want [organizations-read organizations-write webhooks-write]", got)
				}
			},
		},
		{
			dialect:     Cardlytics,
			contentType: "application/json",
			keys:        []string{"access_token", "expires_in", "token_type"},
			expiresIn:   "3600",
			checkToken: func(t *testing.T, _ Provider, token string) {
				if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(token) {
					t.Errorf("got token %q, want 43 base64url characters", token)
				}
			},
		},
		{
			dialect:     CheckIssuing,
			contentType: "application/json",
			keys:        []string{"token_type", "expires_in", "access_token"},
			expiresIn:   "3600",
			checkToken: func(t *testing.T, _ Provider, token string) {
				if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(token) {
					t.Errorf("got token %q, want 40 hex digits", token)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.dialect), func(t *testing.T) {
			s := newServer(t)
			p := testProvider(tt.dialect)
			if got := s.Add(p); got != s.URL()+"/"+p.Name+"/token" {
				t.Fatalf("Add returned %q, want %q", got, s.URL()+"/"+p.Name+"/token")
			}
			c := goodCall(s, p, tt.scope)
			a := c.send(t)
			if a.status != http.StatusOK {
				t.Fatalf("got status %d, want 200: %s", a.status, a.body)
			}
			if got := a.header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
			}
			if got := keys(t, a.body); !slices.Equal(got, tt.keys) {
				t.Errorf("keys %v, want %v", got, tt.keys)
			}
			fields := object(t, successFields(t, tt.dialect, a.body))
			if fields["token_type"] != "Bearer" || fields["expires_in"] != json.Number(tt.expiresIn) {
				t.Errorf("token_type %v expires_in %v, want Bearer %s", fields["token_type"], fields["expires_in"], tt.expiresIn)
			}
			token := accessToken(t, tt.dialect, a.body)
			tt.checkToken(t, p, token)
			if tt.checkOther != nil {
				tt.checkOther(t, a.body)
			}

			st := s.Stats(p.Name)
			if st.Requests != 1 || !slices.Equal(st.Issued, []string{token}) {
				t.Errorf("stats %d requests, issued %q; want 1 and [the token]", st.Requests, st.Issued)
			}
			lr := st.LastRequest
			if lr.Method != http.MethodPost || lr.URI != "/"+p.Name+"/token" || lr.Body != c.body ||
				lr.Header.Get("Content-Type") != c.header.Get("Content-Type") {
				t.Errorf("last request %+v, want the POST to /%s/token as sent", lr, p.Name)
			}
			if s.TotalRequests() != 1 {
				t.Errorf("got TotalRequests %d, want 1", s.TotalRequests())
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	const u = "http://127.0.0.1:1/x/token"
	post, basic, form, json := oauth.ClientSecretPost, oauth.ClientSecretBasic, oauth.FormRequest, oauth.JSONRequest
	want := map[Dialect]struct {
		auth     oauth.AuthMethod
		format   oauth.RequestFormat
		headers  map[string]string
		scope    bool
		lifetime time.Duration
	}{
		ECard:        {post, json, nil, false, 24 * time.Hour},
		Booking:      {post, json, map[string]string{"Accept": "application/json"}, false, time.Hour},
		OpenCard:     {post, form, nil, true, 365 * 24 * time.Hour},
		Cardlytics:   {post, form, nil, false, time.Hour},
		CheckIssuing: {basic, form, nil, false, time.Hour},
	}
	if len(Dialects()) != len(want) {
		t.Fatalf("got Dialects() = %v, want %d dialects", Dialects(), len(want))
	}
	for _, d := range Dialects() {
		got, w := d.Endpoint(u), want[d]
		if got.TokenURL.String() != u || got.AuthMethod != w.auth || got.RequestFormat != w.format || got.BasicEncoding != oauth.BasicForm ||
			(got.Scope != "") != w.scope || !maps.Equal(got.Headers, w.headers) || d.Lifetime() != w.lifetime {
			t.Errorf("%s: %+v, lifetime %s; want %+v", d, got, d.Lifetime(), w)
		}
	}
}

// TestScopeAndLifetime checks Provider.Scope and Provider.Lifetime.
func TestScopeAndLifetime(t *testing.T) {
	s := newServer(t)
	p := testProvider(ECard)
	p.Scope = "read:reports export:reports"
	p.Lifetime = 90 * time.Second
	s.Add(p)

	attrs := func(a answer) map[string]any {
		t.Helper()
		if a.status != http.StatusOK {
			t.Fatalf("got status %d, want 200: %s", a.status, a.body)
		}
		return object(t, field(t, field(t, a.body, "data"), "attributes"))
	}
	// Without a requested scope the provider's scope is granted and echoed.
	got := attrs(goodCall(s, p, "").send(t))
	if got["scope"] != "read:reports export:reports" || got["expires_in"] != json.Number("90") {
		t.Errorf("got attributes %v, want scope \"read:reports export:reports\" and expires_in 90", got)
	}
	_, claims := jwtParts(t, got["access_token"].(string))
	if c := object(t, claims); c["exp"] != json.Number("1795341690") {
		t.Errorf("exp %v, want iat+90", c["exp"])
	}
	// A requested subset is echoed.
	if got := attrs(goodCall(s, p, "export:reports").send(t)); got["scope"] != "export:reports" {
		t.Errorf("got scope %v, want export:reports", got["scope"])
	}
	// A scope outside Provider.Scope is refused.
	if a := goodCall(s, p, "read:reports write:reports").send(t); a.status != http.StatusBadRequest {
		t.Errorf("scope not granted: got status %d, want 400", a.status)
	} else {
		wantError(ECard, 400, "invalid_scope")(t, a.body)
	}
}
