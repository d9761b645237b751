package oauthtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// fixedNow is the server clock in tests that look at times; it has microseconds so
// that booking's fractional NumericDates show.
var fixedNow = time.Date(2026, 11, 22, 10, 0, 0, 583112000, time.UTC)

func newServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	s.SetClock(func() time.Time { return fixedNow })
	return s
}

// testProvider returns a provider of dialect d named after it.
func testProvider(d Dialect) Provider {
	return Provider{Name: string(d), Dialect: d, ClientID: "client-" + string(d), ClientSecret: "s3cret/+=" + string(d)}
}

// call is a request to send; goodCall builds a correct one for a provider.
type call struct {
	method string
	url    string
	header http.Header
	body   string
}

// goodCall builds a correct token request for p from its dialect's Endpoint, so it
// also checks that Endpoint describes what the server accepts.
func goodCall(s *Server, p Provider, scope string) call {
	req := p.Dialect.Endpoint(s.tokenURL(p.Name))
	if req.Scope != "" && scope == "" {
		scope = "organizations-read webhooks-write"
	}
	params := map[string]string{"grant_type": "client_credentials"}
	if scope != "" {
		params["scope"] = scope
	}
	h := http.Header{}
	switch req.AuthMethod {
	case oauth.ClientSecretBasic:
		h.Set("Authorization", basicHeader(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret)))
	case oauth.ClientSecretPost:
		params["client_id"], params["client_secret"] = p.ClientID, p.ClientSecret
	default:
		panic("unknown auth method " + string(req.AuthMethod))
	}
	var body string
	switch req.RequestFormat {
	case oauth.JSONRequest:
		b, _ := json.Marshal(params)
		body = string(b)
		h.Set("Content-Type", "application/json; charset=utf-8")
	case oauth.FormRequest:
		v := url.Values{}
		for k, val := range params {
			v.Set(k, val)
		}
		body = v.Encode()
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		panic("unknown request format " + string(req.RequestFormat))
	}
	for k, v := range req.Headers {
		h.Set(k, v)
	}
	return call{method: http.MethodPost, url: s.URL() + "/" + p.Name + "/token", header: h, body: body}
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// noRedirects is a client that never follows redirects.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (c call) send(t *testing.T) answer {
	t.Helper()
	a, err := c.sendContext(context.Background())
	if err != nil {
		t.Fatalf("%s %s: got err %v, want an answer", c.method, c.url, err)
	}
	return a
}

func (c call) sendContext(ctx context.Context) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		return answer{}, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, err
}

// object decodes a JSON object keeping numbers as json.Number.
func object(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("got %.200q (%v), want a JSON object", data, err)
	}
	return m
}

// keys returns the keys of a JSON object in the order they appear.
func keys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("got %.200q, want a JSON object", data)
	}
	var ks []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

// field returns the raw JSON of a member of an object.
func field(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("got %.200q (%v), want a JSON object", data, err)
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("got %.300s, want a member %q", data, name)
	}
	return v
}

// jwtParts decodes a JWT's header and claims (raw JSON).
func jwtParts(t *testing.T, token string) (header, claims []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts, want 3: %.80s", len(parts), token)
	}
	var err error
	if header, err = base64.RawURLEncoding.DecodeString(parts[0]); err != nil {
		t.Fatalf("JWT header: got err %v, want base64url", err)
	}
	if claims, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		t.Fatalf("JWT claims: got err %v, want base64url", err)
	}
	if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) == 0 {
		t.Fatalf("JWT signature: got err %v, want a non-empty base64url signature", err)
	}
	return header, claims
}

// accessToken extracts the access token of a success answer of dialect d.
func accessToken(t *testing.T, d Dialect, body []byte) string {
	t.Helper()
	var tok struct {
		AccessToken *string `json:"access_token"`
		Data        struct {
			Attributes struct {
				AccessToken *string `json:"access_token"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("got an answer that is no JSON (%v), want JSON", err)
	}
	p := tok.AccessToken
	if d == ECard {
		p = tok.Data.Attributes.AccessToken
	}
	if p == nil {
		t.Fatalf("got %.300s, want an access_token", body)
	}
	return *p
}

// successFields returns the object holding access_token/expires_in in a success answer.
func successFields(t *testing.T, d Dialect, body []byte) []byte {
	t.Helper()
	if d == ECard {
		return field(t, field(t, body, "data"), "attributes")
	}
	return body
}
