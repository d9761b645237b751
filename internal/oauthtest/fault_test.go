package oauthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jwtSeconds returns a JWT's iat and exp in whole seconds; ok is false for opaque tokens.
func jwtSeconds(t *testing.T, token string) (iat, exp int64, hasExp, ok bool) {
	t.Helper()
	if strings.Count(token, ".") != 2 {
		return 0, 0, false, false
	}
	_, claims := jwtParts(t, token)
	c := object(t, claims)
	secs := func(v any) int64 {
		n, _ := v.(json.Number)
		i, err := strconv.ParseInt(strings.SplitN(n.String(), ".", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("got NumericDate %v (%v), want whole seconds", v, err)
		}
		return i
	}
	_, hasExp = c["exp"]
	if hasExp {
		exp = secs(c["exp"])
	}
	return secs(c["iat"]), exp, hasExp, true
}

// TestFaults applies every fault once (Times: 1) to every dialect and checks the
// faulty answer, then that the next answer is normal again.
func TestFaults(t *testing.T) {
	httpDate := "Wed, 21 Oct 2026 07:28:00 GMT"
	tests := []struct {
		name   string
		fault  Fault
		status int
		check  func(t *testing.T, s *Server, p Provider, c call, a answer)
	}{
		{"server error", Fault{Kind: ServerError, RetryAfter: "2"}, 500, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if a.header.Get("Retry-After") != "2" || json.Valid(a.body) {
				t.Errorf("got Retry-After %q, body %s, want 2 and a body that is not JSON", a.header.Get("Retry-After"), a.body)
			}
			noneIssued(t, s, p)
		}},
		{"server error 503", Fault{Kind: ServerError, Status: 503, RetryAfter: httpDate}, 503, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if a.header.Get("Retry-After") != httpDate {
				t.Errorf("got Retry-After %q, want %q", a.header.Get("Retry-After"), httpDate)
			}
		}},
		{"server error without Retry-After", Fault{Kind: ServerError, Status: 502}, 502, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if _, ok := a.header["Retry-After"]; ok {
				t.Errorf("got Retry-After %q, want none", a.header.Get("Retry-After"))
			}
		}},
		{"too many requests", Fault{Kind: TooManyRequests, RetryAfter: httpDate}, 429, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if a.header.Get("Retry-After") != httpDate {
				t.Errorf("got Retry-After %q, want %q", a.header.Get("Retry-After"), httpDate)
			}
			wantError(p.Dialect, 429, "too_many_requests")(t, a.body)
			noneIssued(t, s, p)
		}},
		{"garbage", Fault{Kind: Garbage}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if json.Valid(a.body) || len(a.body) == 0 {
				t.Errorf("got body %s, want a non-empty one that is not JSON", a.body)
			}
			noneIssued(t, s, p)
		}},
		{"oversized", Fault{Kind: Oversized}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if len(a.body) <= 2<<20 || !json.Valid(a.body) {
				t.Fatalf("got a body of %d bytes, valid JSON %v, want valid JSON over 2 MiB", len(a.body), json.Valid(a.body))
			}
			if bytes.Contains(a.body[:1<<20], []byte("access_token")) {
				t.Error("got the token within the first MiB, want it after")
			}
			if tok := accessToken(t, p.Dialect, a.body); !slices.Equal(s.Stats(p.Name).Issued, []string{tok}) {
				t.Errorf("got %d tokens issued, want 1, the one answered", len(s.Stats(p.Name).Issued))
			}
		}},
		{"redirect", Fault{Kind: Redirect}, 307, func(t *testing.T, s *Server, p Provider, c call, a answer) {
			loc := a.header.Get("Location")
			if loc != c.url+"/redirected" {
				t.Fatalf("got Location %q, want %q", loc, c.url+"/redirected")
			}
			noneIssued(t, s, p)
			// A client that followed it would get a token.
			c.url = loc
			b := c.send(t)
			if b.status != 200 {
				t.Fatalf("redirect target: got status %d, want 200: %s", b.status, b.body)
			}
			if st := s.Stats(p.Name); st.Requests != 2 || !slices.Equal(st.Issued, []string{accessToken(t, p.Dialect, b.body)}) {
				t.Errorf("got stats %d requests, %d issued, want 2 and the one answered", st.Requests, len(st.Issued))
			}
		}},
		{"redirect 302", Fault{Kind: Redirect, Status: 302}, 302, nil},
		{"error with 200", Fault{Kind: ErrorWith200}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			wantError(p.Dialect, 401, "invalid_client")(t, a.body)
			noneIssued(t, s, p)
		}},
		{"wrong credentials", Fault{Kind: WrongCredentials}, 401, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			wantError(p.Dialect, 401, "invalid_client")(t, a.body)
			noneIssued(t, s, p)
		}},
		{"wrong credentials 403", Fault{Kind: WrongCredentials, Status: 403}, 403, nil},
		{"expired", Fault{Kind: Expired}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			f := object(t, successFields(t, p.Dialect, a.body))
			if f["expires_in"] != json.Number("0") {
				t.Errorf("expires_in %v, want 0", f["expires_in"])
			}
			tok := accessToken(t, p.Dialect, a.body)
			if iat, exp, _, isJWT := jwtSeconds(t, tok); isJWT {
				lifetime := int64(p.Dialect.Lifetime() / time.Second)
				if want := fixedNow.Add(-time.Minute).Unix(); exp != want || iat != exp-lifetime {
					t.Errorf("iat %d exp %d, want exp %d = iat + %d", iat, exp, want, lifetime)
				}
			}
			if !slices.Equal(s.Stats(p.Name).Issued, []string{tok}) {
				t.Errorf("got Issued %q, want the expired token", s.Stats(p.Name).Issued)
			}
		}},
		{"empty token", Fault{Kind: EmptyToken}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			if tok := accessToken(t, p.Dialect, a.body); tok != "" {
				t.Errorf("got access_token %q, want empty", tok)
			}
			noneIssued(t, s, p)
		}},
		{"no expiry", Fault{Kind: NoExpiry}, 200, func(t *testing.T, s *Server, p Provider, _ call, a answer) {
			f := object(t, successFields(t, p.Dialect, a.body))
			if _, ok := f["expires_in"]; ok {
				t.Errorf("got expires_in %v, want none", f["expires_in"])
			}
			if iat, exp, hasExp, isJWT := jwtSeconds(t, accessToken(t, p.Dialect, a.body)); isJWT &&
				(!hasExp || exp-iat != int64(p.Dialect.Lifetime()/time.Second)) {
				t.Errorf("got JWT iat %d exp %d (present %v), want exp = iat + %s", iat, exp, hasExp, p.Dialect.Lifetime())
			}
		}},
		{"slow", Fault{Kind: Slow, Delay: time.Millisecond}, 200, nil},
	}
	for _, tt := range tests {
		for _, d := range Dialects() {
			t.Run(tt.name+"/"+string(d), func(t *testing.T) {
				s := newServer(t)
				p := testProvider(d)
				s.Add(p)
				f := tt.fault
				f.Times = 1
				s.SetFault(p.Name, f)
				c := goodCall(s, p, "")
				a := c.send(t)
				if a.status != tt.status {
					t.Fatalf("status %d, want %d: %.300s", a.status, tt.status, a.body)
				}
				if tt.check != nil {
					tt.check(t, s, p, c, a)
				}
				before := len(s.Stats(p.Name).Issued)
				if b := c.send(t); b.status != 200 {
					t.Fatalf("after the fault: got status %d, want 200: %.300s", b.status, b.body)
				} else if st := s.Stats(p.Name); len(st.Issued) != before+1 || st.Issued[before] != accessToken(t, d, b.body) {
					t.Errorf("after the fault: got %d tokens issued, want %d, the last one answered", len(st.Issued), before+1)
				}
			})
		}
	}
}

func noneIssued(t *testing.T, s *Server, p Provider) {
	t.Helper()
	if n := len(s.Stats(p.Name).Issued); n != 0 {
		t.Errorf("got %d tokens issued, want none", n)
	}
}

// TestFaultTimes checks that a fault applies to exactly Times requests, 0 meaning
// all, that every request counts, and that SetFault replaces the fault.
func TestFaultTimes(t *testing.T) {
	s := newServer(t)
	p := testProvider(Cardlytics)
	s.Add(p)
	good := goodCall(s, p, "")
	bad := good
	bad.method = http.MethodGet
	statuses := func(calls ...call) []int {
		var got []int
		for _, c := range calls {
			got = append(got, c.send(t).status)
		}
		return got
	}

	s.SetFault(p.Name, Fault{Kind: ServerError, Times: 3})
	if got := statuses(good, bad, good, good, bad); !slices.Equal(got, []int{500, 500, 500, 200, 405}) {
		t.Errorf("Times 3: got %v, want [500 500 500 200 405]", got)
	}
	s.SetFault(p.Name, Fault{Kind: TooManyRequests})
	if got := statuses(good, good, good, good); !slices.Equal(got, []int{429, 429, 429, 429}) {
		t.Errorf("Times 0: got %v, want [429 429 429 429]", got)
	}
	s.SetFault(p.Name, Fault{Kind: WrongCredentials, Times: 1})
	if got := statuses(good, good); !slices.Equal(got, []int{401, 200}) {
		t.Errorf("replaced: got %v, want [401 200]", got)
	}
	s.SetFault(p.Name, Fault{Kind: Garbage})
	s.SetFault(p.Name, Fault{})
	if got := statuses(good); !slices.Equal(got, []int{200}) {
		t.Errorf("cleared: got %v, want [200]", got)
	}
	if st := s.Stats(p.Name); st.Requests != 12 || len(st.Issued) != 3 {
		t.Errorf("stats %d requests, %d issued; want 12 and 3", st.Requests, len(st.Issued))
	}
}

// waitForRequests waits until the provider has received n requests.
func waitForRequests(t *testing.T, s *Server, name string, n int) {
	t.Helper()
	for s.Stats(name).Requests < n {
		time.Sleep(time.Millisecond)
	}
}

// TestWaitsEndWithTheClient checks that Slow and SetLatency stop waiting when the
// client gives up, answer nothing then, and that Close aborts waiting requests.
func TestWaitsEndWithTheClient(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *Server, name string)
	}{
		{"slow forever", func(s *Server, name string) { s.SetFault(name, Fault{Kind: Slow, Times: 1}) }},
		{"slow an hour", func(s *Server, name string) { s.SetFault(name, Fault{Kind: Slow, Delay: time.Hour, Times: 1}) }},
		{"latency", func(s *Server, name string) { s.SetLatency(time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/client gives up", func(t *testing.T) {
			s := newServer(t)
			p := testProvider(Booking)
			s.Add(p)
			tt.setup(s, p.Name)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() {
				_, err := goodCall(s, p, "").sendContext(ctx)
				done <- err
			}()
			waitForRequests(t, s, p.Name, 1)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("client error %v, want context.Canceled", err)
			}
			s.SetLatency(0)
			if a := goodCall(s, p, "").send(t); a.status != 200 {
				t.Errorf("next request: got status %d, want 200", a.status)
			}
			if n := len(s.Stats(p.Name).Issued); n != 1 {
				t.Errorf("%d tokens issued, want 1 (none for the abandoned request)", n)
			}
		})
		t.Run(tt.name+"/server closes", func(t *testing.T) {
			s := NewServer()
			defer s.Close()
			p := testProvider(Cardlytics)
			s.Add(p)
			tt.setup(s, p.Name)
			done := make(chan error)
			go func() {
				_, err := goodCall(s, p, "").sendContext(context.Background())
				done <- err
			}()
			waitForRequests(t, s, p.Name, 1)
			s.Close()
			if err := <-done; err == nil {
				t.Error("got an answer to the waiting request, want an error")
			}
		})
	}
}

func TestSetFaultValidates(t *testing.T) {
	s := newServer(t)
	s.Add(testProvider(ECard))
	for _, f := range []Fault{
		{Kind: "bogus"},
		{Kind: ServerError, Times: -1},
		{Kind: Slow, Delay: -time.Second},
		{Kind: ServerError, Status: 42},
		{Kind: Redirect, Status: 200},
	} {
		if !panics(func() { s.SetFault("ecard", f) }) {
			t.Errorf("SetFault(%+v) did not panic, want a panic", f)
		}
	}
	if !panics(func() { s.SetFault("nobody", Fault{}) }) {
		t.Error("SetFault on an unknown provider did not panic, want a panic")
	}
}

func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}
