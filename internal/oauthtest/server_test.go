package oauthtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	s := newServer(t)
	a, b := testProvider(OpenCard), testProvider(CheckIssuing)
	s.Add(a)
	s.Add(b)
	if st := s.Stats(a.Name); st.Requests != 0 || st.Issued != nil || st.LastRequest.Method != "" {
		t.Errorf("got fresh stats %+v, want zero", st)
	}

	var tokens []string
	for range 3 {
		tokens = append(tokens, accessToken(t, OpenCard, goodCall(s, a, "").send(t).body))
	}
	bad := goodCall(s, a, "")
	bad.header.Set("X-Test", "last")
	bad.body = "grant_type=client_credentials"
	bad.send(t)
	goodCall(s, b, "").send(t)
	if resp, err := http.Get(s.URL() + "/nobody/token"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown provider: got %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	st := s.Stats(a.Name)
	if st.Requests != 4 || len(st.Issued) != 3 {
		t.Fatalf("got stats %d requests, %d issued, want 4 and 3", st.Requests, len(st.Issued))
	}
	for i := range tokens {
		if st.Issued[i] != tokens[i] {
			t.Errorf("got Issued[%d] %q, want %q, the %d. token answered", i, st.Issued[i], tokens[i], i+1)
		}
	}
	if tokens[0] == tokens[1] || tokens[1] == tokens[2] {
		t.Errorf("got tokens %q, want each different", tokens)
	}
	if lr := st.LastRequest; lr.Body != "grant_type=client_credentials" || lr.Header.Get("X-Test") != "last" {
		t.Errorf("got last request %+v, want the bad one with X-Test: last", lr)
	}
	if st := s.Stats(b.Name); st.Requests != 1 || len(st.Issued) != 1 ||
		!strings.HasPrefix(st.LastRequest.Header.Get("Authorization"), "Basic ") {
		t.Errorf("got other provider's stats %+v, want 1 request with Basic, 1 issued", st)
	}
	if got := s.TotalRequests(); got != 6 {
		t.Errorf("TotalRequests %d, want 6", got)
	}

	// Stats returns copies.
	st.Issued[0] = "changed"
	st.LastRequest.Header.Set("X-Test", "changed")
	if again := s.Stats(a.Name); again.Issued[0] != tokens[0] || again.LastRequest.Header.Get("X-Test") != "last" {
		t.Error("got Stats sharing memory with the server, want a copy")
	}
}

func TestSetCredentials(t *testing.T) {
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			s := newServer(t)
			old := testProvider(d)
			s.Add(old)
			s.SetCredentials(old.Name, old.ClientID, "rotated secret")
			if a := goodCall(s, old, "").send(t); a.status != http.StatusUnauthorized {
				t.Errorf("old secret: got status %d, want 401", a.status)
			}
			rotated := old
			rotated.ClientSecret = "rotated secret"
			if a := goodCall(s, rotated, "").send(t); a.status != http.StatusOK {
				t.Errorf("new secret: got status %d, want 200: %s", a.status, a.body)
			}
		})
	}
}

// TestConcurrent hits many providers from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	s := newServer(t)
	s.SetLatency(time.Millisecond)
	const providers, perProvider = 40, 10
	var ps []Provider
	for i := range providers {
		p := testProvider(Dialects()[i%len(Dialects())])
		p.Name = fmt.Sprintf("p%03d", i)
		s.Add(p)
		ps = append(ps, p)
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		for range perProvider {
			wg.Go(func() {
				a, err := goodCall(s, p, "").sendContext(t.Context())
				if err != nil || a.status != http.StatusOK {
					t.Errorf("%s: got err %v, status %d, want nil and 200", p.Name, err, a.status)
				}
			})
		}
		wg.Go(func() { s.SetFault(p.Name, Fault{}); _ = s.Stats(p.Name) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, p := range ps {
		st := s.Stats(p.Name)
		if st.Requests != perProvider || len(st.Issued) != perProvider {
			t.Errorf("%s: got %d requests, %d issued, want %d each", p.Name, st.Requests, len(st.Issued), perProvider)
		}
		for _, tok := range st.Issued {
			if seen[tok] {
				t.Errorf("got token %q issued twice, want each once", tok)
			}
			seen[tok] = true
		}
	}
	if s.TotalRequests() != providers*perProvider {
		t.Errorf("got TotalRequests %d, want %d", s.TotalRequests(), providers*perProvider)
	}
}

func TestAddValidates(t *testing.T) {
	s := newServer(t)
	s.Add(testProvider(ECard))
	ok := Provider{Name: "x", Dialect: Cardlytics, ClientID: "id", ClientSecret: "secret"}
	tests := []struct {
		name string
		edit func(p *Provider)
	}{
		{"taken name", func(p *Provider) { p.Name = "ecard" }},
		{"no name", func(p *Provider) { p.Name = "" }},
		{"slash in name", func(p *Provider) { p.Name = "a/b" }},
		{"dot-dot name", func(p *Provider) { p.Name = ".." }},
		{"unknown dialect", func(p *Provider) { p.Dialect = "oauth1" }},
		{"no secret", func(p *Provider) { p.ClientSecret = "" }},
		{"unknown Basic encoding", func(p *Provider) { p.BasicEncoding = "base64" }},
		{"sub-second lifetime", func(p *Provider) { p.Lifetime = time.Millisecond }},
		{"raw Basic id with ':'", func(p *Provider) { p.Dialect, p.BasicEncoding, p.ClientID = CheckIssuing, BasicRaw, "a:b" }},
	}
	for _, tt := range tests {
		p := ok
		tt.edit(&p)
		if !panics(func() { s.Add(p) }) {
			t.Errorf("%s: Add did not panic, want a panic", tt.name)
		}
	}
	if !panics(func() { s.Stats("nobody") }) || !panics(func() { s.SetCredentials("nobody", "a", "b") }) ||
		!panics(func() { s.SetCredentials("ecard", "", "b") }) {
		t.Error("got no panic for an unknown provider or empty credentials, want one")
	}
	s.Add(ok) // none of the failed calls added it
}

func TestCloseTwice(t *testing.T) {
	s := NewServer()
	s.Close()
	s.Close()
}

// TestPartnerAPI: the partner API accepts only the token the provider issued last.
func TestPartnerAPI(t *testing.T) {
	s := newServer(t)
	p := testProvider(Cardlytics)
	s.Add(p)
	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, s.APIURL(p.Name)+"/v1/reports", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Fatalf("no token: got %d, want 401", code)
	}
	goodCall(s, p, "").send(t)
	first := s.Stats(p.Name).Issued[0]
	if code := get(first); code != http.StatusOK {
		t.Fatalf("the issued token: got %d, want 200", code)
	}
	goodCall(s, p, "").send(t)
	if code := get(first); code != http.StatusUnauthorized {
		t.Fatalf("a token replaced by a newer one: got %d, want 401", code)
	}
	if st := s.Stats(p.Name); st.APIRequests != 3 || st.APIAccepted != 1 {
		t.Fatalf("got stats %+v, want 3 API requests, 1 accepted", st)
	}
}
