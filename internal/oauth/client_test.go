package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fastClient retries without real waits, so fault tests take no time.
func fastClient() *oauth.Client {
	return &oauth.Client{InitialBackoff: time.Millisecond, MaxRetryAfter: time.Millisecond, RequestTimeout: 5 * time.Second}
}

const secret = "s3cr3t+/=% :with spaces"

func TestClientSeedDialects(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	for _, d := range oauthtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			name := "seed-" + string(d)
			u := srv.Add(oauthtest.Provider{Name: name, Dialect: d, ClientID: "id-" + name, ClientSecret: secret})
			p := d.Endpoint(u)
			before := time.Now()
			tok, err := fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: "id-" + name, ClientSecret: secret})
			if err != nil {
				t.Fatalf("Token: got err %v, want nil", err)
			}
			st := srv.Stats(name)
			if len(st.Issued) != 1 || tok.AccessToken != st.Issued[0] {
				t.Fatalf("got token %q, provider issued %q, want that one token", tok.AccessToken, st.Issued)
			}
			if tok.TokenType != "Bearer" {
				t.Errorf("got token type %q, want %q", tok.TokenType, "Bearer")
			}
			life := d.Lifetime()
			// Expiry is counted from when the request was sent.
			if tok.IssuedAt.Before(before.Add(-time.Second)) || tok.ExpiresAt.Sub(tok.IssuedAt) != life {
				t.Errorf("issued %s expires %s, want lifetime %s", tok.IssuedAt, tok.ExpiresAt, life)
			}
			if strings.Contains(st.LastRequest.Body, "client_secret") == (d == oauthtest.CheckIssuing) {
				t.Errorf("%s: got client_secret in body %v, want %v: %s", d, d == oauthtest.CheckIssuing, d != oauthtest.CheckIssuing, st.LastRequest.Body)
			}
		})
	}
}

// TestClientBasicEncoding: with basic_auth_encoding form, ids and secrets with
// every character that form encoding changes, spaces included, authenticate against
// both kinds of server decoder, the form decoder ('+' is a space) and the
// percent-only one ('+' is a plus) that Authlib and others use; raw works against
// plain RFC 7617 servers.
func TestClientBasicEncoding(t *testing.T) {
	secrets := []string{secret, "a:b:c", "100%25", "p+l/u=s", "  ", "ümlaut", "with space+plus"}
	srv := oauthtest.NewServer()
	defer srv.Close()
	for i, sec := range secrets {
		for _, enc := range []oauthtest.BasicEncoding{oauthtest.BasicForm, oauthtest.BasicPercent, oauthtest.BasicRaw} {
			name := fmt.Sprintf("basic-%s-%d", enc, i)
			t.Run(name, func(t *testing.T) {
				id := "client:" + name // a ':' in the id survives only form encoding
				if enc == oauthtest.BasicRaw {
					id = "client-" + name
				}
				u := srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.CheckIssuing, ClientID: id, ClientSecret: sec, BasicEncoding: enc})
				p := oauthtest.CheckIssuing.Endpoint(u)
				if enc == oauthtest.BasicRaw {
					p.BasicEncoding = oauth.BasicRaw
				}
				if _, err := fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: id, ClientSecret: sec}); err != nil {
					t.Fatalf("Token: got err %v, want nil", err)
				}
				auth := srv.Stats(name).LastRequest.Header.Get("Authorization")
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
				want := id + ":" + sec
				if enc != oauthtest.BasicRaw {
					esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
					want = esc(id) + ":" + esc(sec)
				}
				if string(raw) != want {
					t.Fatalf("Basic credentials %q, want %q", raw, want)
				}
			})
		}
	}
}

func TestClientFaults(t *testing.T) {
	type check func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats)
	failsWith := func(target error) check {
		return func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
			if !errors.Is(err, target) {
				t.Fatalf("err = %v, want %v", err, target)
			}
		}
	}
	refused := func(status int, rejected bool) check {
		return func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
			var e *oauth.Error
			if !errors.As(err, &e) || e.StatusCode != status || e.CredentialsRejected() != rejected {
				t.Fatalf("err = %#v, want a %d refusal (credentials rejected: %v)", err, status, rejected)
			}
			if st.Requests != 1 {
				t.Fatalf("got %d requests, want 1: a final refusal must not be retried", st.Requests)
			}
		}
	}
	succeedsAfter := func(requests int) check {
		return func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
			if err != nil {
				t.Fatalf("got error %v, want a token", err)
			}
			if st.Requests != requests || tok.AccessToken != st.Issued[len(st.Issued)-1] {
				t.Fatalf("got %d requests and token %q of %q; want %d requests and the last token issued", st.Requests, tok.AccessToken, st.Issued, requests)
			}
		}
	}
	tests := []struct {
		name    string
		dialect oauthtest.Dialect
		fault   oauthtest.Fault
		defLife time.Duration // the endpoint's DefaultLifetime
		client  *oauth.Client
		check   check
	}{
		{"5xx then success", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.ServerError, Times: 2, Status: 503}, 0, nil, succeedsAfter(3)},
		{"429 with Retry-After then success", oauthtest.Booking, oauthtest.Fault{Kind: oauthtest.TooManyRequests, Times: 1, RetryAfter: "120"}, 0, nil, succeedsAfter(2)},
		{"5xx every time gives up after MaxAttempts", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.ServerError}, 0, nil,
			func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
				var e *oauth.Error
				if !errors.As(err, &e) || e.StatusCode != 500 || st.Requests != oauth.DefaultMaxAttempts {
					t.Fatalf("got %v after %d requests, want an *oauth.Error with status 500 after %d", err, st.Requests, oauth.DefaultMaxAttempts)
				}
			}},
		{"slow answer times out and is retried", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.Slow, Times: 1}, 0,
			&oauth.Client{InitialBackoff: time.Millisecond, RequestTimeout: 50 * time.Millisecond}, succeedsAfter(2)},
		{"garbage", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.Garbage}, 0, nil, failsWith(oauth.ErrBadResponse)},
		{"oversized body", oauthtest.ECard, oauthtest.Fault{Kind: oauthtest.Oversized}, 0, nil, failsWith(oauth.ErrBadResponse)},
		{"redirect not followed", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.Redirect}, 0, nil, refused(307, false)},
		{"checkissuing error with 200", oauthtest.CheckIssuing, oauthtest.Fault{Kind: oauthtest.ErrorWith200}, 0, nil, refused(200, true)},
		{"RFC 6749 error with 200", oauthtest.Booking, oauthtest.Fault{Kind: oauthtest.ErrorWith200}, 0, nil, refused(200, true)},
		{"JSON:API error with 200", oauthtest.ECard, oauthtest.Fault{Kind: oauthtest.ErrorWith200}, 0, nil, refused(200, true)},
		{"wrong credentials", oauthtest.Booking, oauthtest.Fault{Kind: oauthtest.WrongCredentials}, 0, nil, refused(401, true)},
		{"wrong credentials, JSON:API", oauthtest.ECard, oauthtest.Fault{Kind: oauthtest.WrongCredentials}, 0, nil, refused(401, true)},
		{"wrong credentials, Access Denied", oauthtest.CheckIssuing, oauthtest.Fault{Kind: oauthtest.WrongCredentials}, 0, nil, refused(401, true)},
		{"expired flat token", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.Expired}, 0, nil, failsWith(oauth.ErrInvalidToken)},
		{"expired JWT", oauthtest.ECard, oauthtest.Fault{Kind: oauthtest.Expired}, 0, nil, failsWith(oauth.ErrInvalidToken)},
		{"empty token", oauthtest.OpenCard, oauthtest.Fault{Kind: oauthtest.EmptyToken}, 0, nil, failsWith(oauth.ErrInvalidToken)},
		{"no expiry, opaque token, no default", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.NoExpiry}, 0, nil, failsWith(oauth.ErrNoExpiry)},
		{"no expiry, opaque token, default_lifetime", oauthtest.Cardlytics, oauthtest.Fault{Kind: oauthtest.NoExpiry}, 2 * time.Hour, nil,
			func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
				if err != nil || tok.ExpiresAt.Sub(tok.IssuedAt) != 2*time.Hour {
					t.Fatalf("got token %+v, error %v; want a token living 2h", tok, err)
				}
			}},
		{"no expiry, JWT exp used", oauthtest.Booking, oauthtest.Fault{Kind: oauthtest.NoExpiry}, 0, nil,
			func(t *testing.T, tok *tokens.Token, err error, st oauthtest.Stats) {
				if err != nil {
					t.Fatal(err)
				}
				if d := tok.ExpiresAt.Sub(tok.IssuedAt); d < 59*time.Minute || d > 61*time.Minute {
					t.Fatalf("JWT lifetime %s, want about 1h", d)
				}
			}},
	}
	srv := oauthtest.NewServer()
	defer srv.Close()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("fault-%d", i)
			u := srv.Add(oauthtest.Provider{Name: name, Dialect: tt.dialect, ClientID: "id", ClientSecret: secret})
			srv.SetFault(name, tt.fault)
			p := tt.dialect.Endpoint(u)
			p.DefaultLifetime = tt.defLife
			c := tt.client
			if c == nil {
				c = fastClient()
			}
			tok, err := c.Token(context.Background(), p, oauth.Credentials{ClientID: "id", ClientSecret: secret})
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("got err %v, want one without the secret", err)
			}
			tt.check(t, tok, err, srv.Stats(name))
		})
	}
}

func TestClientRespectsDeadline(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	u := srv.Add(oauthtest.Provider{Name: "busy", Dialect: oauthtest.Cardlytics, ClientID: "id", ClientSecret: secret})
	srv.SetFault("busy", oauthtest.Fault{Kind: oauthtest.TooManyRequests, RetryAfter: "3600"})
	p := oauthtest.Cardlytics.Endpoint(u)
	// A Retry-After beyond the caller's deadline ends the attempts at once, with the
	// endpoint's reason rather than a bare deadline error.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &oauth.Client{MaxRetryAfter: time.Hour}
	_, err := c.Token(ctx, p, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	var e *oauth.Error
	if !errors.As(err, &e) || e.StatusCode != 429 || e.RetryAfter != "3600" {
		t.Fatalf("got %v, want an *oauth.Error with status 429 and Retry-After 3600", err)
	}
	if n := srv.Stats("busy").Requests; n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestClientRefusesInsecureURL(t *testing.T) {
	for _, raw := range []string{"http://example.com/token", "ftp://127.0.0.1/token"} {
		u, _ := url.Parse(raw)
		p := oauth.Endpoint{TokenURL: u}
		_, err := fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: "a", ClientSecret: "b"})
		if !errors.Is(err, oauth.ErrInsecureURL) {
			t.Errorf("%s: got %v, want ErrInsecureURL", raw, err)
		}
	}
}

func TestClientRequestShape(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	u := srv.Add(oauthtest.Provider{Name: "shape", Dialect: oauthtest.ECard, ClientID: "id", ClientSecret: secret})
	p := oauthtest.ECard.Endpoint(u)
	p.Audience, p.ExtraParams, p.Headers = "https://api.example", map[string]string{"resource": "reports"}, map[string]string{"X-Partner": "acme"}
	if _, err := fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: "id", ClientSecret: secret}); err != nil {
		t.Fatal(err)
	}
	req := srv.Stats("shape").LastRequest
	var body map[string]string
	if err := json.Unmarshal([]byte(req.Body), &body); err != nil {
		t.Fatalf("got body %q (%v), want a JSON object", req.Body, err)
	}
	want := map[string]string{"grant_type": "client_credentials", "client_id": "id", "client_secret": secret, "audience": "https://api.example", "resource": "reports"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%s] = %q, want %q", k, body[k], v)
		}
	}
	if got := req.Header.Get("X-Partner"); got != "acme" {
		t.Errorf("got X-Partner %q, want %q", got, "acme")
	}
	if got := req.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("got Content-Type %q, want %q", got, "application/json; charset=utf-8")
	}
}

func TestClientRetriesNetworkErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Drop the connection without an answer, as a failing load balancer does.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"after-retry","token_type":"Bearer","expires_in":60}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/token")
	p := oauth.Endpoint{TokenURL: u}
	tok, err := fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	if err != nil || tok.AccessToken != "after-retry" || calls.Load() != 2 {
		t.Fatalf("got token %v, err %v after %d calls, want after-retry, nil, 2 calls", tok, err, calls.Load())
	}

	// Nothing listening: every attempt fails, and the error says it was the network.
	srv.Close()
	_, err = fastClient().Token(context.Background(), p, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	var e *oauth.Error
	if err == nil || errors.As(err, &e) || !errors.Is(err, oauth.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable and no *oauth.Error", err)
	}
}

// TestClientLifetimeShorterStatementWins: expires_in in milliseconds (a unit
// mistake) does not outlive the token's own exp claim.
func TestClientLifetimeShorterStatementWins(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, exp)))
	jwt := "eyJhbGciOiJub25lIn0." + claims + ".c2ln"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600000}`, jwt)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tok, err := fastClient().Token(context.Background(), oauth.Endpoint{TokenURL: u}, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt.Unix() != exp {
		t.Fatalf("expires at %s, want the JWT's exp %s", tok.ExpiresAt, time.Unix(exp, 0).UTC())
	}
}

// TestClientTLSFailureIsFinal: a certificate that does not verify is not retried.
func TestClientTLSFailureIsFinal(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS() // a certificate no client trusts
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, err := fastClient().Token(context.Background(), oauth.Endpoint{TokenURL: u}, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	if !errors.Is(err, oauth.ErrUnreachable) || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("got %v, want ErrUnreachable naming TLS", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("got %d connections, want 1: a failed handshake was retried", n)
	}
}

// TestClientDeadlineGivesTheRealReason: when the caller's time runs out, the error
// says what the endpoint did (no answer; a 503 asking for a long wait), and
// errors.Is still finds the context's error where the time ran out mid-request.
func TestClientDeadlineGivesTheRealReason(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	hang := srv.Add(oauthtest.Provider{Name: "hang", Dialect: oauthtest.Cardlytics, ClientID: "id", ClientSecret: secret})
	srv.SetFault("hang", oauthtest.Fault{Kind: oauthtest.Slow})
	busy := srv.Add(oauthtest.Provider{Name: "busy", Dialect: oauthtest.Cardlytics, ClientID: "id", ClientSecret: secret})
	srv.SetFault("busy", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 503, RetryAfter: "30"})
	c := &oauth.Client{MaxRetryAfter: time.Minute}
	cred := oauth.Credentials{ClientID: "id", ClientSecret: secret}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Token(ctx, oauthtest.Cardlytics.Endpoint(hang), cred)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, oauth.ErrUnreachable) ||
		!strings.Contains(err.Error(), "no answer") || strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("hanging endpoint: got err %v, want errors.Is(err, context.DeadlineExceeded) and ErrUnreachable, saying \"no answer\" without \"context deadline exceeded\"", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Token(ctx, oauthtest.Cardlytics.Endpoint(busy), cred)
	var oe *oauth.Error
	if !errors.As(err, &oe) || oe.StatusCode != 503 || strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("503 with a Retry-After past the deadline: got err %v, want an *oauth.Error with status 503, without \"context deadline exceeded\"", err)
	}
	if n := srv.Stats("busy").Requests; n != 1 {
		t.Errorf("got %d requests, want 1: a retry that would end past the deadline was started", n)
	}

	// Cancelled (a shutdown) while waiting to try again: the endpoint's 503 is still
	// the reason.
	srv.SetFault("busy", oauthtest.Fault{Kind: oauthtest.ServerError, Status: 503, RetryAfter: "2"})
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = c.Token(ctx, oauthtest.Cardlytics.Endpoint(busy), cred)
	if !errors.As(err, &oe) || oe.StatusCode != 503 || !errors.Is(err, context.Canceled) ||
		!strings.Contains(err.Error(), "before another attempt") {
		t.Errorf("cancelled while waiting to retry a 503: got err %v, want an *oauth.Error with status 503, errors.Is(err, context.Canceled), \"before another attempt\"", err)
	}
}

// TestClientZeroEndpointIsRFC6749: an Endpoint with nothing but its URL speaks the
// grant as RFC 6749 writes it (a form body with the credentials in it, an
// Accept: application/json header, a flat answer), which the strictest seed
// dialect of that shape accepts.
func TestClientZeroEndpointIsRFC6749(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	u, _ := url.Parse(srv.Add(oauthtest.Provider{Name: "plain", Dialect: oauthtest.Cardlytics, ClientID: "id", ClientSecret: secret}))
	tok, err := fastClient().Token(context.Background(), oauth.Endpoint{TokenURL: u}, oauth.Credentials{ClientID: "id", ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Stats("plain")
	if tok.AccessToken != st.Issued[0] {
		t.Fatalf("got token %v, want the one issued, %q", tok, st.Issued)
	}
	req := st.LastRequest
	form, err := url.ParseQuery(req.Body)
	if err != nil || form.Get("grant_type") != "client_credentials" || form.Get("client_id") != "id" || form.Get("client_secret") != secret {
		t.Errorf("got body %q, want a client_credentials grant with client_id and client_secret", req.Body)
	}
	if ct, accept := req.Header.Get("Content-Type"), req.Header.Get("Accept"); ct != "application/x-www-form-urlencoded" || accept != "application/json" {
		t.Errorf("got Content-Type %q, Accept %q; want %q, %q", ct, accept, "application/x-www-form-urlencoded", "application/json")
	}
	if req.Header.Get("Authorization") != "" {
		t.Errorf("got Authorization %q, want none: credentials sent in an Authorization header too", req.Header.Get("Authorization"))
	}
}

// TestVerify: a check passes on an expected status, fails with the status on any
// other, and its error never holds the token, even from a partner that echoes it.
func TestVerify(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	u := srv.Add(oauthtest.Provider{Name: "partner", Dialect: oauthtest.Cardlytics, ClientID: "id", ClientSecret: secret})
	tok, err := fastClient().Token(context.Background(), oauthtest.Cardlytics.Endpoint(u), oauth.Credentials{ClientID: "id", ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	api, _ := url.Parse(srv.APIURL("partner") + "/v1/ping")
	if err := fastClient().Verify(context.Background(), oauth.Check{URL: api}, tok); err != nil {
		t.Fatalf("the token the provider issued: got err %v, want nil", err)
	}
	stale := *tok
	stale.AccessToken = "stale-token-value"
	err = fastClient().Verify(context.Background(), oauth.Check{URL: api, Expect: []int{200, 204}}, &stale)
	if !errors.Is(err, oauth.ErrVerification) || !strings.Contains(err.Error(), "answered 401, want 200 or 204") {
		t.Fatalf("a token the partner refuses: got err %v, want errors.Is(err, oauth.ErrVerification) with \"answered 401, want 200 or 204\"", err)
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 %s\r\n\r\n", strings.ReplaceAll(r.Header.Get("Authorization"), " ", ""))
		buf.Flush()
		conn.Close()
	}))
	defer echo.Close()
	eu, _ := url.Parse(echo.URL)
	err = fastClient().Verify(context.Background(), oauth.Check{URL: eu}, tok)
	if !errors.Is(err, oauth.ErrVerification) || strings.Contains(err.Error(), tok.AccessToken) || strings.Contains(err.Error(), tok.AccessToken[:8]) {
		t.Fatalf("an echoing partner: got err %v, want errors.Is(err, oauth.ErrVerification) without the token", err)
	}
	insecure, _ := url.Parse("http://partner.example.com/ping")
	if err := fastClient().Verify(context.Background(), oauth.Check{URL: insecure}, tok); !errors.Is(err, oauth.ErrInsecureURL) {
		t.Fatalf("plain http elsewhere: got err %v, want errors.Is(err, oauth.ErrInsecureURL)", err)
	}
}
