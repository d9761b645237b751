package oauth

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseResponse feeds arbitrary answers to the parser. Whatever it is sent, it
// must not panic, and anything it accepts must be a token the refresher may publish.
// Seed inputs are in testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`), "")
	f.Add(200, []byte(`{"data":{"attributes":{"access_token":"a.b.c","expires_in":"86400"}}}`), "")
	f.Add(401, []byte(`{"error":"invalid_client","error_description":"nope"}`), "")
	f.Add(200, []byte(`{"status":0,"errors":["Access Denied"]}`), "")
	f.Add(401, []byte(`{"errors":[{"title":"Unauthorized","detail":"x"}]}`), "")
	f.Add(200, []byte(`{"r":[{"t":"x"}]}`), "/r/0/t")
	f.Fuzz(func(t *testing.T, status int, body []byte, pointer string) {
		r, err := parseResponse(status, body, ResponseFields{AccessToken: pointer})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, errBadResponse) {
				t.Fatalf("unclassified error %v: want an *Error, ErrInvalidToken or errBadResponse", err)
			}
			if e != nil && (strings.ContainsAny(e.Description+e.Code, "\n\r") || e.Description != clean(e.Description)) {
				t.Fatalf("got reason %q, want it cleaned (one line, no control characters)", e.Description)
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("accepted a token from status %d, want an error outside 2xx", status)
		}
		if err := checkToken(r.AccessToken); err != nil {
			t.Fatalf("accepted an unusable token (%v), want an error", err)
		}
		if r.TokenType != "Bearer" || r.ExpiresIn < 0 || r.ExpiresIn > maxLifetime {
			t.Fatalf("accepted %+v: want type Bearer and a lifetime from 0 to %v", r, maxLifetime)
		}
	})
}
