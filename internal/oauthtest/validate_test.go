package oauthtest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// wantError checks a dialect's error answer for an RFC 6749 error code.
func wantError(d Dialect, status int, code string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		switch d {
		case ECard:
			var e struct {
				Errors []map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 {
				t.Fatalf("got %s, want a JSON:API error with one entry", body)
			}
			got := e.Errors[0]
			if got["status"] != strconv.Itoa(status) || got["title"] != http.StatusText(status) || got["detail"] == "" || len(got) != 3 {
				t.Errorf("JSON:API error %v, want status %d", got, status)
			}
		case CheckIssuing:
			if got := keys(t, body); !slices.Equal(got, []string{"status", "errors"}) {
				t.Fatalf("got keys %v in %s, want [status errors]", got, body)
			}
			if string(field(t, body, "status")) != "0" {
				t.Errorf("got status field %s, want 0", field(t, body, "status"))
			}
			var msgs []string
			if err := json.Unmarshal(field(t, body, "errors"), &msgs); err != nil || len(msgs) != 1 {
				t.Fatalf("got errors %s, want one string", field(t, body, "errors"))
			}
			if code == "invalid_client" && string(body) != `{"status":0,"errors":["Access Denied"]}` {
				t.Errorf("body %s, want the seed's Access Denied", body)
			}
		default:
			if got := keys(t, body); !slices.Equal(got, []string{"error", "error_description"}) {
				t.Fatalf("got keys %v in %s, want [error error_description]", got, body)
			}
			if e := object(t, body); e["error"] != code || e["error_description"] == "" {
				t.Errorf("error %v, want %s", e, code)
			}
		}
	}
}

func TestRejectsBadRequests(t *testing.T) {
	type edit func(c *call, p Provider)
	setHeader := func(k, v string) edit { return func(c *call, _ Provider) { c.header.Set(k, v) } }
	tests := []struct {
		name    string
		dialect Dialect
		edit    edit
		status  int
		code    string // RFC 6749 code; "" when the answer is no dialect error
	}{
		// Credentials.
		{"ecard wrong secret", ECard, func(c *call, p Provider) { c.body = strings.Replace(c.body, jsonString(p.ClientSecret), `"nope"`, 1) }, 401, "invalid_client"},
		{"booking wrong secret", Booking, func(c *call, p Provider) { c.body = strings.Replace(c.body, jsonString(p.ClientSecret), `"nope"`, 1) }, 401, "invalid_client"},
		{"opencard wrong id", OpenCard, replaceForm("client_id", "nope"), 401, "invalid_client"},
		{"cardlytics wrong secret", Cardlytics, replaceForm("client_secret", "nope"), 401, "invalid_client"},
		{"checkissuing wrong secret", CheckIssuing, setHeader("Authorization", basicHeader("client-checkissuing", "nope")), 401, "invalid_client"},
		{"checkissuing no Authorization", CheckIssuing, func(c *call, _ Provider) { c.header.Del("Authorization") }, 401, "invalid_client"},
		{"checkissuing Bearer", CheckIssuing, setHeader("Authorization", "Bearer abc"), 401, "invalid_client"},
		{"checkissuing credentials in body", CheckIssuing, func(c *call, p Provider) {
			c.body += "&client_id=" + url.QueryEscape(p.ClientID) + "&client_secret=" + url.QueryEscape(p.ClientSecret)
		}, 400, "invalid_request"},
		{"ecard missing secret", ECard, func(c *call, p Provider) {
			c.body = `{"client_id":"` + p.ClientID + `","grant_type":"client_credentials"}`
		}, 400, "invalid_request"},
		{"ecard id not a string", ECard, func(c *call, p Provider) {
			c.body = `{"client_id":1,"client_secret":` + jsonString(p.ClientSecret) + `,"grant_type":"client_credentials"}`
		}, 400, "invalid_request"},
		{"cardlytics also Basic", Cardlytics, setHeader("Authorization", basicHeader("a", "b")), 400, "invalid_request"},
		// Content type and Accept.
		{"ecard form content type", ECard, setHeader("Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_request"},
		{"ecard no content type", ECard, func(c *call, _ Provider) { c.header.Del("Content-Type") }, 400, "invalid_request"},
		{"ecard latin1 charset", ECard, setHeader("Content-Type", "application/json; charset=iso-8859-1"), 400, "invalid_request"},
		{"ecard body not JSON", ECard, func(c *call, _ Provider) { c.body = "grant_type=client_credentials" }, 400, "invalid_request"},
		{"booking no Accept", Booking, func(c *call, _ Provider) { c.header.Del("Accept") }, 406, "invalid_request"},
		{"booking Accept */*", Booking, setHeader("Accept", "*/*"), 406, "invalid_request"},
		{"booking form body", Booking, setHeader("Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_request"},
		{"opencard JSON content type", OpenCard, setHeader("Content-Type", "application/json"), 400, "invalid_request"},
		{"cardlytics text/plain", Cardlytics, setHeader("Content-Type", "text/plain"), 400, "invalid_request"},
		{"checkissuing JSON", CheckIssuing, setHeader("Content-Type", "application/json"), 400, "invalid_request"},
		// Grant type, parameters, scope.
		{"cardlytics password grant", Cardlytics, replaceForm("grant_type", "password"), 400, "unsupported_grant_type"},
		{"cardlytics no grant_type", Cardlytics, replaceForm("grant_type", ""), 400, "invalid_request"},
		{"ecard wrong grant_type", ECard, func(c *call, _ Provider) { c.body = strings.Replace(c.body, "client_credentials", "implicit", 1) }, 400, "unsupported_grant_type"},
		{"checkissuing wrong grant_type", CheckIssuing, func(c *call, _ Provider) { c.body = "grant_type=password" }, 400, "unsupported_grant_type"},
		{"cardlytics repeated parameter", Cardlytics, func(c *call, p Provider) { c.body += "&client_id=" + url.QueryEscape(p.ClientID) }, 400, "invalid_request"},
		{"cardlytics parameters in query", Cardlytics, func(c *call, _ Provider) { c.url += "?grant_type=client_credentials" }, 400, "invalid_request"},
		{"opencard no scope", OpenCard, replaceForm("scope", ""), 400, "invalid_scope"},
		{"opencard scope with two spaces", OpenCard, replaceForm("scope", "a  b"), 400, "invalid_scope"},
		// Method.
		{"cardlytics GET", Cardlytics, func(c *call, _ Provider) { c.method = http.MethodGet }, 405, "invalid_request"},
		{"ecard PUT", ECard, func(c *call, _ Provider) { c.method = http.MethodPut }, 405, "invalid_request"},
		{"checkissuing body too large", CheckIssuing, func(c *call, _ Provider) { c.body += "&x=" + strings.Repeat("a", maxRequestBody) }, 413, "invalid_request"},
		// Path.
		{"unknown provider", Cardlytics, func(c *call, _ Provider) { c.url = strings.Replace(c.url, "/cardlytics/", "/nobody/", 1) }, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			p := testProvider(tt.dialect)
			s.Add(p)
			c := goodCall(s, p, "")
			tt.edit(&c, p)
			a := c.send(t)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code == "" {
				return
			}
			wantError(tt.dialect, tt.status, tt.code)(t, a.body)
			if got := s.Stats(p.Name); got.Requests != 1 || len(got.Issued) != 0 {
				t.Errorf("got stats %+v, want 1 request, none issued", got)
			}
			if tt.status == 405 && a.header.Get("Allow") != "POST" {
				t.Errorf("got Allow %q, want POST", a.header.Get("Allow"))
			}
			if tt.dialect == CheckIssuing && tt.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("got WWW-Authenticate %q, want Basic", a.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestAcceptsVariants checks request variants a strict server must still accept.
func TestAcceptsVariants(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		edit    func(c *call)
	}{
		{"ecard without charset", ECard, func(c *call) { c.header.Set("Content-Type", "application/json") }},
		{"ecard upper-case charset", ECard, func(c *call) { c.header.Set("Content-Type", "application/json; charset=UTF-8") }},
		{"ecard extra fields", ECard, func(c *call) { c.body = strings.Replace(c.body, "{", `{"audience":"x",`, 1) }},
		{"booking Accept list", Booking, func(c *call) { c.header.Set("Accept", "text/html, application/json;q=0.9") }},
		{"cardlytics form charset", Cardlytics, func(c *call) { c.header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8") }},
		{"checkissuing lower-case scheme", CheckIssuing, func(c *call) {
			c.header.Set("Authorization", "basic "+strings.TrimPrefix(c.header.Get("Authorization"), "Basic "))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			p := testProvider(tt.dialect)
			s.Add(p)
			c := goodCall(s, p, "")
			tt.edit(&c)
			if a := c.send(t); a.status != http.StatusOK {
				t.Fatalf("got status %d, want 200: %s", a.status, a.body)
			}
		})
	}
}

// TestCredentialEncoding checks that secrets with + / = % : and spaces round-trip in
// hand-built Basic headers, form bodies and JSON bodies.
func TestCredentialEncoding(t *testing.T) {
	const (
		id     = "client id+1"
		secret = "s+e/c=r%e:t x=="
		// id and secret form-encoded by hand (RFC 6749 §2.3.1), '+' for space ...
		formPlus = "client+id%2B1:s%2Be%2Fc%3Dr%25e%3At+x%3D%3D"
		// ... and %20 for space, which form decoding accepts as well.
		form20 = "client%20id%2B1:s%2Be%2Fc%3Dr%25e%3At%20x%3D%3D"
	)
	b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name     string
		encoding BasicEncoding
		id       string
		header   string
		status   int
	}{
		{"form, + for space", BasicForm, id, b64(formPlus), 200},
		{"form, %20 for space", BasicForm, id, b64(form20), 200},
		{"form is the default", "", id, b64(formPlus), 200},
		{"form refuses a raw header", BasicForm, id, b64(id + ":" + secret), 401},
		{"form refuses a bad escape", BasicForm, id, b64("client%zz:" + secret), 401},
		{"form: a ':' in the id must be escaped", BasicForm, "a:b", b64("a%3Ab:s%2Be%2Fc%3Dr%25e%3At+x%3D%3D"), 200},
		{"raw, split at the first ':'", BasicRaw, "client id-1", b64("client id-1:" + secret), 200},
		{"raw refuses a form-encoded header", BasicRaw, "client id-1", b64("client+id-1:s%2Be%2Fc%3Dr%25e%3At+x%3D%3D"), 401},
		{"no ':'", BasicRaw, "client", b64("client"), 401},
		{"not base64", BasicForm, id, "Basic !!!", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			p := Provider{Name: "ci", Dialect: CheckIssuing, ClientID: tt.id, ClientSecret: secret, BasicEncoding: tt.encoding}
			c := call{method: http.MethodPost, url: s.Add(p), body: "grant_type=client_credentials", header: http.Header{
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Authorization": {tt.header},
			}}
			if a := c.send(t); a.status != tt.status {
				t.Errorf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
		})
	}
	for _, d := range []Dialect{ECard, Booking, OpenCard, Cardlytics} {
		t.Run(string(d)+" body", func(t *testing.T) {
			s := newServer(t)
			p := Provider{Name: "p", Dialect: d, ClientID: id, ClientSecret: secret}
			s.Add(p)
			if a := goodCall(s, p, "").send(t); a.status != http.StatusOK {
				t.Errorf("got status %d, want 200: %s", a.status, a.body)
			}
		})
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// replaceForm sets (or, with an empty value, removes) a form parameter.
func replaceForm(key, value string) func(c *call, _ Provider) {
	return func(c *call, _ Provider) {
		v, err := url.ParseQuery(c.body)
		if err != nil {
			panic(err)
		}
		if value == "" {
			v.Del(key)
		} else {
			v.Set(key, value)
		}
		c.body = v.Encode()
	}
}
