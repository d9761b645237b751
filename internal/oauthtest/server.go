// Package oauthtest runs fake OAuth 2.0 client-credentials token endpoints for unit
// tests, integration tests, benchmarks and the local demo.
//
// One Server (an httptest server on 127.0.0.1) hosts any number of providers, each at
// POST {URL}/{name}/token and each speaking one of the seed dialects exactly as its
// provider document shows (see Dialect). Providers validate requests like a strict
// real server, issue a fresh random token per request, record what they received and
// issued (Stats), and can be made to misbehave (Fault). Everything is safe for
// concurrent use, and nothing depends on package testing:
//
//	srv := oauthtest.NewServer()
//	defer srv.Close()
//	tokenURL := srv.Add(oauthtest.Provider{Name: "ecard", Dialect: oauthtest.ECard,
//		ClientID: "id", ClientSecret: "secret"})
//	srv.SetFault("ecard", oauthtest.Fault{Kind: oauthtest.ServerError, Times: 1})
//	// ... point the code under test at tokenURL ...
//	st := srv.Stats("ecard") // st.Requests, st.Issued, st.LastRequest
//
// Methods that name a provider panic when no provider has that name; Add panics on an
// invalid Provider. Such panics are mistakes in the calling test, not test failures.
package oauthtest

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxRequestBody bounds the token requests the server reads; larger bodies get 413.
const maxRequestBody = 1 << 20

// BasicEncoding says how a provider decodes an HTTP Basic Authorization header.
type BasicEncoding string

// Basic header decodings.
const (
	// BasicForm base64-decodes the header, splits it at the first ':' and then
	// form-decodes (url.QueryUnescape: "%XX" and '+' for space) the client id and the
	// secret, as RFC 6749 §2.3.1 requires. It is the default.
	BasicForm BasicEncoding = "form"
	// BasicPercent is BasicForm with percent-decoding only (url.PathUnescape: '+'
	// stays a plus), as Authlib, authentik and django-oauth-toolkit decode.
	BasicPercent BasicEncoding = "percent"
	// BasicRaw base64-decodes the header and splits it at the first ':' with no
	// further decoding, as plain RFC 7617 does.
	BasicRaw BasicEncoding = "raw"
)

// Provider describes one fake provider. Only Name, Dialect, ClientID and ClientSecret are required.
type Provider struct {
	// Name is the provider's path segment: letters, digits, '.', '_' and '-', unique per Server.
	Name string
	// Dialect is the seed dialect the provider speaks.
	Dialect Dialect
	// ClientID and ClientSecret are the credentials the provider accepts.
	ClientID, ClientSecret string
	// BasicEncoding is how an HTTP Basic header is decoded (dialects with Basic client
	// authentication only); empty means BasicForm.
	BasicEncoding BasicEncoding
	// Scope lists, space-separated, the scopes the client may request; a request
	// without scope is granted all of them. Empty allows any scope.
	Scope string
	// Lifetime, when not zero, replaces the dialect's lifetime; expires_in is it in
	// whole seconds, so it must be at least one second.
	Lifetime time.Duration
}

// Request is a token request as the server received it.
type Request struct {
	// Method is the HTTP method.
	Method string
	// URI is the request URI: the path and any query string.
	URI string
	// Header holds the request headers (net/http keeps Host out of it).
	Header http.Header
	// Body is the request body, byte for byte.
	Body string
}

// Stats is what one provider has seen and done.
type Stats struct {
	// Requests counts every request to the provider's paths, valid or not,
	// including followed redirects.
	Requests int
	// Issued lists, in the order they were sent, the non-empty access tokens the
	// provider put into answers, including those of the Expired, NoExpiry and Oversized
	// faults. It grows with every token (about 1 KiB per JWT) for the server's lifetime.
	Issued []string
	// LastRequest is the most recent request; its Method is empty when there was none.
	LastRequest Request
	// APIRequests counts the requests to the provider's partner API (APIURL), and
	// APIAccepted those it answered with 200.
	APIRequests, APIAccepted int
}

// Server hosts fake providers. Create it with NewServer and Close it when done.
type Server struct {
	ts        *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	providers map[string]*fake
	total     int
	latency   time.Duration
	now       func() time.Time
}

// fake is one provider's configuration and state, guarded by Server.mu.
type fake struct {
	p         Provider
	spec      dialectSpec
	fault     Fault
	remaining int // requests the fault still applies to when fault.Times > 0
	requests  int
	issued    []string
	last      Request

	apiRequests, apiAccepted int
	revoked                  string // a token the partner API refuses though it was issued last
}

// NewServer starts a server with no providers on a loopback address.
// The caller must call Close.
func NewServer() *Server {
	s := &Server{
		closed:    make(chan struct{}),
		providers: make(map[string]*fake),
		now:       time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{name}/token", func(w http.ResponseWriter, r *http.Request) {
		s.serveToken(w, r, false)
	})
	mux.HandleFunc("/{name}/token/redirected", func(w http.ResponseWriter, r *http.Request) {
		s.serveToken(w, r, true)
	})
	mux.HandleFunc("/{name}/api/{path...}", s.serveAPI)
	s.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.total++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// URL returns the server's base URL, http://127.0.0.1:port, without a trailing slash.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server. Requests still waiting (Slow, SetLatency) are aborted first,
// so Close never waits for them. Close may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ts.Close()
	})
}

// Add adds a provider and returns its token endpoint URL, {URL}/{name}/token.
// It panics when p is invalid or its name is taken.
func (s *Server) Add(p Provider) (tokenURL string) {
	if err := checkName(p.Name); err != nil {
		panic("oauthtest: " + err.Error())
	}
	sp := p.Dialect.spec()
	if p.BasicEncoding == "" {
		p.BasicEncoding = BasicForm
	}
	switch {
	case p.BasicEncoding != BasicForm && p.BasicEncoding != BasicPercent && p.BasicEncoding != BasicRaw:
		panic(fmt.Sprintf("oauthtest: provider %q: unknown BasicEncoding %q", p.Name, string(p.BasicEncoding)))
	case p.Lifetime != 0 && p.Lifetime < time.Second:
		panic(fmt.Sprintf("oauthtest: provider %q: Lifetime %v is under one second", p.Name, p.Lifetime))
	}
	if err := checkCredentials(p, p.ClientID, p.ClientSecret); err != nil {
		panic(fmt.Sprintf("oauthtest: provider %q: %v", p.Name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.providers[p.Name]; dup {
		panic(fmt.Sprintf("oauthtest: provider %q added twice", p.Name))
	}
	s.providers[p.Name] = &fake{p: p, spec: sp}
	return s.tokenURL(p.Name)
}

func (s *Server) tokenURL(name string) string { return s.ts.URL + "/" + name + "/token" }

// SetFault replaces the provider's fault; Fault{} makes it answer normally again.
func (s *Server) SetFault(name string, f Fault) {
	if err := f.validate(); err != nil {
		panic(fmt.Sprintf("oauthtest: provider %q: %v", name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fp := s.provider(name)
	fp.fault, fp.remaining = f, f.Times
}

// SetCredentials replaces the credentials the provider accepts, as when a secret is
// rotated at the provider.
func (s *Server) SetCredentials(name, clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp := s.provider(name)
	if err := checkCredentials(fp.p, clientID, clientSecret); err != nil {
		panic(fmt.Sprintf("oauthtest: provider %q: %v", name, err))
	}
	fp.p.ClientID, fp.p.ClientSecret = clientID, clientSecret
}

// SetLatency delays every answer of every provider by d, on top of any Slow fault.
// A request whose client gives up while waiting is abandoned unanswered.
func (s *Server) SetLatency(d time.Duration) {
	if d < 0 {
		panic("oauthtest: negative latency")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetClock makes the server take the current time from now (for iat, exp and
// JSON:API meta.timestamp) instead of time.Now; nil restores time.Now. now is called
// from many goroutines. Waits (Slow, SetLatency) always use real time.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// APIURL returns the base URL of the provider's partner API, {URL}/{name}/api. It
// answers any method and path below it with 200 and a small JSON body when the
// request carries "Authorization: Bearer T" with T the token the provider issued
// last, as a partner that revokes a token when it issues the next one; with 401 and
// WWW-Authenticate otherwise. Stats.APIRequests and Stats.APIAccepted count them.
func (s *Server) APIURL(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.provider(name)
	return s.ts.URL + "/" + name + "/api"
}

// serveAPI answers a request to a provider's partner API.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxRequestBody))
	s.mu.Lock()
	fp, ok := s.providers[r.PathValue("name")]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	fp.apiRequests++
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	accepted := strings.EqualFold(scheme, "Bearer") && len(fp.issued) > 0 && token == fp.issued[len(fp.issued)-1] && token != fp.revoked
	if accepted {
		fp.apiAccepted++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !accepted {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_token"}`)
		return
	}
	fmt.Fprintf(w, `{"provider":%q,"path":%q}`, fp.p.Name, "/"+r.PathValue("path"))
}

// Revoke makes the provider's partner API refuse the token it issued last, as a
// partner does after revoking it on its side, until it issues another.
func (s *Server) Revoke(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fp := s.provider(name); len(fp.issued) > 0 {
		fp.revoked = fp.issued[len(fp.issued)-1]
	}
}

// Stats returns a copy of what the provider has seen and done so far.
func (s *Server) Stats(name string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp := s.provider(name)
	st := Stats{
		Requests:    fp.requests,
		Issued:      append([]string(nil), fp.issued...),
		LastRequest: fp.last,
		APIRequests: fp.apiRequests,
		APIAccepted: fp.apiAccepted,
	}
	st.LastRequest.Header = fp.last.Header.Clone()
	return st
}

// TotalRequests counts every request the server received, including those to
// unknown paths.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// provider returns the named provider; s.mu must be held.
func (s *Server) provider(name string) *fake {
	fp, ok := s.providers[name]
	if !ok {
		panic(fmt.Sprintf("oauthtest: no provider %q", name))
	}
	return fp
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("provider without a name")
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("provider name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("provider name %q is not a path segment", name)
	}
	return nil
}

func checkCredentials(p Provider, id, secret string) error {
	switch {
	case id == "" || secret == "":
		return fmt.Errorf("ClientID and ClientSecret must not be empty")
	case p.Dialect.spec().basic && p.BasicEncoding == BasicRaw && strings.Contains(id, ":"):
		return fmt.Errorf("a client id with ':' cannot be sent in a raw (RFC 7617) Basic header")
	}
	return nil
}

// take returns the fault that applies to the current request and counts it; s.mu must be held.
func (fp *fake) take() Fault {
	f := fp.fault
	if f.Kind == NoFault || f.Times == 0 {
		return f
	}
	fp.remaining--
	if fp.remaining <= 0 {
		fp.fault, fp.remaining = Fault{}, 0
	}
	return f
}

// pause waits d, or forever when d is zero and forever is set. It aborts the request
// (net/http then drops the connection without an answer) when the client gives up or
// the server closes.
func (s *Server) pause(ctx context.Context, d time.Duration, forever bool) {
	if d <= 0 && !forever {
		return
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-ctx.Done():
		panic(http.ErrAbortHandler)
	case <-s.closed:
		panic(http.ErrAbortHandler)
	}
}

// serveToken answers a request to a provider's token path, or, when redirected is
// set, to the target of its Redirect fault (which applies no fault).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, redirected bool) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))

	s.mu.Lock()
	fp, ok := s.providers[r.PathValue("name")]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	fp.requests++
	fp.last = Request{Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body)}
	var f Fault
	if !redirected {
		f = fp.take()
	}
	x := &exchange{s: s, fp: fp, w: w, r: r, p: fp.p, sp: fp.spec, body: body, readErr: readErr}
	latency, now := s.latency, s.now
	s.mu.Unlock()

	s.pause(r.Context(), latency, false)

	switch f.Kind {
	case ServerError:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		status := f.status(http.StatusInternalServerError)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%[1]d %[2]s</title></head><body><h1>%[1]d %[2]s</h1></body></html>\n",
			status, http.StatusText(status))
		return
	case TooManyRequests:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		x.writeError(f.status(http.StatusTooManyRequests), errTooManyRequests)
		return
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status(http.StatusOK))
		io.WriteString(w, "<html><body>Service Temporarily Unavailable</body></html>\n")
		return
	case Redirect:
		w.Header().Set("Location", s.tokenURL(fp.p.Name)+"/redirected")
		w.WriteHeader(f.status(http.StatusTemporaryRedirect))
		return
	case ErrorWith200:
		x.writeError(f.status(http.StatusOK), errInvalidClient)
		return
	case WrongCredentials:
		x.writeError(f.status(http.StatusUnauthorized), errInvalidClient)
		return
	case Slow:
		s.pause(r.Context(), f.Delay, true)
		f = Fault{}
	case EchoError:
		x.writeError(f.status(http.StatusBadRequest), badRequest("invalid_request", "could not process %s", x.echo()))
		return
	case EchoTokenType, EchoExpiresIn:
		x.issueEcho(now(), f)
		return
	case EchoStatusLine, HugeStatusLine:
		line := strings.NewReplacer(" ", "", "\r", "", "\n", "").Replace(x.echo())
		if f.Kind == HugeStatusLine {
			line = strings.Repeat("x", cmp.Or(f.Size, 4<<20))
		}
		if conn, buf, err := w.(http.Hijacker).Hijack(); err == nil {
			fmt.Fprintf(buf, "HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n", line)
			buf.Flush()
			conn.Close()
		}
		return
	}

	g, e := x.validate()
	if e != nil {
		x.writeError(e.status, e)
		return
	}
	x.issue(now(), g, f)
}

// exchange is one token request being answered.
type exchange struct {
	s       *Server
	fp      *fake // to record issued tokens, under s.mu
	w       http.ResponseWriter
	r       *http.Request
	p       Provider // copy taken when the request arrived
	sp      dialectSpec
	body    []byte
	readErr error
}

// apiError is an error answer before it is put into the dialect's shape.
type apiError struct {
	status int    // the HTTP status, also written into JSON:API errors[].status
	code   string // RFC 6749 error code
	desc   string // human-readable detail; never contains a secret
}

// Error describes the refusal as the fake provider reports it.
func (e *apiError) Error() string { return e.code + ": " + e.desc }

var (
	errInvalidClient   = &apiError{http.StatusUnauthorized, "invalid_client", "Client authentication failed"}
	errTooManyRequests = &apiError{http.StatusTooManyRequests, "too_many_requests", "Rate limit exceeded, try again later"}
)

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

// validate checks the request as the dialect requires and returns the scope to grant.
func (x *exchange) validate() (scope string, _ *apiError) {
	r, sp := x.r, x.sp
	if r.Method != http.MethodPost {
		x.w.Header().Set("Allow", http.MethodPost)
		return "", &apiError{http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts only POST"}
	}
	if x.readErr != nil {
		return "", &apiError{http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large"}
	}
	if r.URL.RawQuery != "" {
		return "", badRequest("invalid_request", "Token request parameters belong in the body, not the URL")
	}
	if sp.acceptJSON && !acceptsJSON(r.Header.Values("Accept")) {
		return "", &apiError{http.StatusNotAcceptable, "invalid_request", "The Accept header must include application/json"}
	}
	params, e := x.params()
	if e != nil {
		return "", e
	}
	switch gt := params["grant_type"]; gt {
	case "client_credentials":
	case "":
		return "", badRequest("invalid_request", "grant_type is required")
	default:
		return "", badRequest("unsupported_grant_type", "grant_type must be client_credentials")
	}
	if e := x.authenticate(params); e != nil {
		return "", e
	}
	return x.grantScope(params["scope"])
}

// params decodes the body as the dialect's request format. Values of the fields the
// server reads must be strings (JSON) and must not repeat (form).
func (x *exchange) params() (map[string]string, *apiError) {
	ct := x.r.Header.Get("Content-Type")
	if x.sp.json {
		if !hasMediaType(ct, "application/json") {
			return nil, badRequest("invalid_request", "Content-Type must be application/json")
		}
		return jsonParams(x.body)
	}
	if !hasMediaType(ct, "application/x-www-form-urlencoded") {
		return nil, badRequest("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	vals, err := url.ParseQuery(string(x.body))
	if err != nil {
		return nil, badRequest("invalid_request", "The body is not valid application/x-www-form-urlencoded")
	}
	params := make(map[string]string, len(vals))
	for k, v := range vals {
		if len(v) > 1 {
			return nil, badRequest("invalid_request", "Parameter %s is repeated", k)
		}
		params[k] = v[0]
	}
	return params, nil
}

// authenticate checks the client credentials where the dialect expects them.
func (x *exchange) authenticate(params map[string]string) *apiError {
	auth := x.r.Header.Get("Authorization")
	var id, secret string
	if x.sp.basic {
		if _, ok := params["client_id"]; ok {
			return badRequest("invalid_request", "Client credentials belong in the Authorization header only")
		}
		if _, ok := params["client_secret"]; ok {
			return badRequest("invalid_request", "Client credentials belong in the Authorization header only")
		}
		var ok bool
		if id, secret, ok = decodeBasic(auth, x.p.BasicEncoding); !ok {
			return errInvalidClient
		}
	} else {
		if scheme, _, _ := strings.Cut(auth, " "); strings.EqualFold(scheme, "Basic") {
			return badRequest("invalid_request", "Use only one client authentication method")
		}
		id, secret = params["client_id"], params["client_secret"]
		if id == "" || secret == "" {
			return badRequest("invalid_request", "client_id and client_secret are required")
		}
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(x.p.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(x.p.ClientSecret))
	if idOK&secretOK != 1 {
		return errInvalidClient
	}
	return nil
}

// grantScope checks the requested scope and returns the scope granted.
func (x *exchange) grantScope(requested string) (string, *apiError) {
	scopes := strings.Fields(requested)
	if requested != strings.Join(scopes, " ") {
		return "", badRequest("invalid_scope", "Scopes must be separated by single spaces")
	}
	if len(scopes) == 0 {
		switch {
		case x.sp.scopeRequired:
			return "", badRequest("invalid_scope", "scope is required")
		case x.p.Scope != "":
			return x.p.Scope, nil
		default:
			return x.sp.defaultScope, nil
		}
	}
	if x.p.Scope != "" {
		allowed := strings.Fields(x.p.Scope)
		for _, sc := range scopes {
			if !slices.Contains(allowed, sc) {
				return "", badRequest("invalid_scope", "Scope %q is not allowed for this client", sc)
			}
		}
	}
	return requested, nil
}

// decodeBasic decodes an HTTP Basic Authorization header: base64, split at the first
// ':', and for BasicForm url.QueryUnescape of both parts (RFC 6749 §2.3.1), for
// BasicPercent url.PathUnescape.
func decodeBasic(header string, enc BasicEncoding) (id, secret string, ok bool) {
	scheme, cred, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	id, secret, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	unescape := url.QueryUnescape
	if enc == BasicPercent {
		unescape = url.PathUnescape
	}
	if enc != BasicRaw {
		var err1, err2 error
		id, err1 = unescape(id)
		secret, err2 = unescape(secret)
		if err1 != nil || err2 != nil {
			return "", "", false
		}
	}
	return id, secret, true
}
