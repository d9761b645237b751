package tokens_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/oauth2"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// partner is a fake partner API as an http.RoundTripper: it accepts the access
// tokens in accept, answers 401 to any other, and records what it saw.
type partner struct {
	mu     sync.Mutex
	accept map[string]bool
	auths  []string
	bodies []string
	resps  []*trackedBody
}

func newPartner(accept ...string) *partner {
	p := &partner{accept: map[string]bool{}}
	for _, a := range accept {
		p.accept[a] = true
	}
	return p
}

func (p *partner) RoundTrip(req *http.Request) (*http.Response, error) {
	var body string
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = string(b)
	}
	auth := req.Header.Get("Authorization")
	_, tok, _ := strings.Cut(auth, " ")

	p.mu.Lock()
	defer p.mu.Unlock()
	p.auths = append(p.auths, auth)
	p.bodies = append(p.bodies, body)
	status, text := http.StatusOK, "hello"
	if !p.accept[tok] {
		status, text = http.StatusUnauthorized, `{"error":"invalid_token"}`
	}
	rb := &trackedBody{Reader: strings.NewReader(text)}
	p.resps = append(p.resps, rb)
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: rb, Request: req}, nil
}

func (p *partner) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auths...)
}

// trackedBody records whether it was read to the end and closed.
type trackedBody struct {
	*strings.Reader
	mu     sync.Mutex
	closed bool
}

func (b *trackedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *trackedBody) state() (drained, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Len() == 0, b.closed
}

// rotated returns a Source that has cached tok-A while the parameter already
// holds tok-B, as after a rotation the consumer has not noticed yet.
func rotated(t *testing.T) (*tokens.Source, *fakeSSM) {
	t.Helper()
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	src := tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now))
	if _, err := src.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.publish(param, published("tok-B", time.Hour))
	return src, store
}

func TestTransportSetsAuthorizationWithoutTouchingRequest(t *testing.T) {
	tests := []struct{ tokenType, want string }{
		{"Bearer", "Bearer tok-A"},
		{"bearer", "Bearer tok-A"}, // some providers answer lower case; RFC 6750 spells it Bearer
		{"DPoP", "DPoP tok-A"},
	}
	for _, tc := range tests {
		t.Run(tc.tokenType, func(t *testing.T) {
			store := newFakeSSM()
			tok := published("tok-A", time.Hour)
			tok.TokenType = tc.tokenType
			store.publish(param, tok)
			p := newPartner("tok-A")
			tr := &tokens.Transport{Source: tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now)), Base: p}

			req, _ := http.NewRequest(http.MethodGet, "https://partner.example/v1/things", nil)
			req.Header.Set("Accept", "application/json")
			before := req.Header.Clone()
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if got := p.seen(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("partner saw Authorization %q, want [%q]", got, tc.want)
			}
			assertUnchanged(t, req, before)
		})
	}
}

func assertUnchanged(t *testing.T, req *http.Request, before http.Header) {
	t.Helper()
	if len(req.Header) != len(before) || req.Header.Get("Authorization") != "" {
		t.Errorf("caller's request headers: got %v, want %v, unchanged", req.Header, before)
	}
	for k, v := range before {
		if strings.Join(req.Header.Values(k), ",") != strings.Join(v, ",") {
			t.Errorf("caller's header %s: got %v, want %v, unchanged", k, req.Header.Values(k), v)
		}
	}
}

func TestTransportRetries401WithNewerToken(t *testing.T) {
	src, store := rotated(t)
	p := newPartner("tok-B")
	tr := &tokens.Transport{Source: src, Base: p}

	req, _ := http.NewRequest(http.MethodGet, "https://partner.example/v1/things", nil)
	before := req.Header.Clone()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200 after the retry", res.StatusCode)
	}
	if got := p.seen(); strings.Join(got, "|") != "Bearer tok-A|Bearer tok-B" {
		t.Errorf("partner saw %q, want tok-A then tok-B", got)
	}
	if drained, closed := p.resps[0].state(); !drained || !closed {
		t.Errorf("first response body drained=%v closed=%v, want both", drained, closed)
	}
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d, want 2", n)
	}
	assertUnchanged(t, req, before)
}

func TestTransport401WithSameTokenIsReturned(t *testing.T) {
	store := newFakeSSM()
	store.publish(param, published("tok-A", time.Hour))
	p := newPartner() // accepts nothing: the credentials themselves are wrong
	tr := &tokens.Transport{Source: tokens.NewSource(store, param, tokens.WithClock(newFakeClock(t0).Now)), Base: p}

	req, _ := http.NewRequest(http.MethodGet, "https://partner.example/v1/things", nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want the partner's 401", res.StatusCode)
	}
	if b, _ := io.ReadAll(res.Body); !strings.Contains(string(b), "invalid_token") {
		t.Errorf("401 body = %q, want the partner's body intact", b)
	}
	if n := len(p.seen()); n != 1 {
		t.Errorf("partner saw %d requests, want 1: retrying with the same token is pointless", n)
	}
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d, want 2 (the first and the re-read after the 401)", n)
	}
}

// rotatingReader publishes a new token on every read, so every re-read finds
// a "newer" token.
type rotatingReader struct {
	mu sync.Mutex
	n  int
}

func (r *rotatingReader) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	r.mu.Lock()
	r.n++
	b, _ := published("tok-"+strconv.Itoa(r.n), time.Hour).Marshal()
	r.mu.Unlock()
	v := string(b)
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: &v}}, nil
}

func TestTransportRetriesAtMostOnce(t *testing.T) {
	p := newPartner() // rejects every token
	tr := &tokens.Transport{Source: tokens.NewSource(&rotatingReader{}, param, tokens.WithClock(newFakeClock(t0).Now)), Base: p}
	req, _ := http.NewRequest(http.MethodGet, "https://partner.example/v1/things", nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", res.StatusCode)
	}
	if got := p.seen(); strings.Join(got, "|") != "Bearer tok-1|Bearer tok-2" {
		t.Errorf("partner saw %q, want exactly one retry", got)
	}
}

func TestTransportRetriesBodyOnlyWhenReplayable(t *testing.T) {
	const payload = `{"q":"x"}`
	tests := []struct {
		name      string
		req       func() *http.Request
		wantRetry bool
	}{
		{"no body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "https://partner.example/", nil)
			return r
		}, true},
		{"http.NoBody", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "https://partner.example/", http.NoBody)
			return r
		}, true},
		{"in-memory body (GetBody set)", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "https://partner.example/", strings.NewReader(payload))
			return r
		}, true},
		{"streamed body (GetBody nil)", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "https://partner.example/", io.NopCloser(strings.NewReader(payload)))
			return r
		}, false},
		{"GetBody fails", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "https://partner.example/", strings.NewReader(payload))
			r.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
			return r
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, store := rotated(t)
			p := newPartner("tok-B")
			tr := &tokens.Transport{Source: src, Base: p}
			req := tc.req()
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()

			wantStatus, wantCalls := http.StatusUnauthorized, 1
			if tc.wantRetry {
				wantStatus, wantCalls = http.StatusOK, 2
			}
			if res.StatusCode != wantStatus || len(p.seen()) != wantCalls {
				t.Fatalf("status %d after %d requests, want %d after %d", res.StatusCode, len(p.seen()), wantStatus, wantCalls)
			}
			if req.Body != nil && req.Body != http.NoBody && p.bodies[len(p.bodies)-1] != payload {
				t.Errorf("last request body = %q, want %q", p.bodies[len(p.bodies)-1], payload)
			}
			// Without a retry, the 401 still invalidated the token: the next request
			// uses the new one.
			tok, err := src.TokenContext(context.Background())
			if err != nil || tok.AccessToken != "tok-B" {
				t.Errorf("next token = %v, %v; want tok-B", tok, err)
			}
			if n := store.readCount(); n != 2 {
				t.Errorf("reads = %d, want 2", n)
			}
		})
	}
}

func TestTransportConcurrent401sCauseOneReRead(t *testing.T) {
	const requests = 20
	src, store := rotated(t)
	p := newPartner("tok-B")
	tr := &tokens.Transport{Source: src, Base: p}

	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "https://partner.example/", nil)
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Errorf("got err %v, want nil", err)
				return
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", res.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := store.readCount(); n != 2 {
		t.Errorf("reads = %d for %d requests rejected with the same old token, want 2", n, requests)
	}
}

func TestTransportClosesRequestBodyOnError(t *testing.T) {
	tests := []struct {
		name string
		tr   func() *tokens.Transport
		want string
	}{
		{"nil Source", func() *tokens.Transport { return &tokens.Transport{Base: newPartner()} }, "Source is nil"},
		{"no token", func() *tokens.Transport {
			src := tokens.NewSource(newFakeSSM(), param, tokens.WithClock(newFakeClock(t0).Now))
			return &tokens.Transport{Source: src, Base: newPartner()}
		}, param},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &trackedBody{Reader: strings.NewReader("payload")}
			req, _ := http.NewRequest(http.MethodPost, "https://partner.example/", body)
			res, err := tc.tr().RoundTrip(req)
			if err == nil {
				_ = res.Body.Close()
				t.Fatal("RoundTrip succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got err %q, want one mentioning %q", err, tc.want)
			}
			if _, closed := body.state(); !closed {
				t.Error("got the request body open, want it closed: the RoundTripper contract requires it")
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	t.Run("base client from the context", func(t *testing.T) {
		src, _ := rotated(t) // cached tok-A, parameter holds tok-B
		p := newPartner("tok-B")
		jar := &recordingJar{}
		base := &http.Client{Transport: p, Timeout: 7 * time.Second, Jar: jar}
		c := tokens.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, base), src)
		if c.Timeout != base.Timeout || c.Jar != jar {
			t.Errorf("got timeout %v, jar %v; want the base client's %v, %v", c.Timeout, c.Jar, base.Timeout, jar)
		}
		res, err := c.Get("https://partner.example/v1/things")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		// Through the base transport, with the 401 recovery of a Transport.
		if got := p.seen(); res.StatusCode != http.StatusOK || len(got) != 2 || got[0] != "Bearer tok-A" || got[1] != "Bearer tok-B" {
			t.Errorf("got status %d, partner saw %q; want 200, [\"Bearer tok-A\" \"Bearer tok-B\"]", res.StatusCode, got)
		}
	})
	t.Run("default transport", func(t *testing.T) {
		src, _ := rotated(t)
		c := tokens.NewClient(context.Background(), src)
		tr, ok := c.Transport.(*tokens.Transport)
		if !ok || tr.Source != src || tr.Base != nil || c.Timeout != 0 {
			t.Errorf("got transport %+v, timeout %v; want a *tokens.Transport of src on the default base, no timeout", c.Transport, c.Timeout)
		}
	})
}

// recordingJar is a cookie jar that keeps nothing, to tell it apart from nil.
type recordingJar struct{}

func (*recordingJar) SetCookies(*url.URL, []*http.Cookie) {}
func (*recordingJar) Cookies(*url.URL) []*http.Cookie     { return nil }
