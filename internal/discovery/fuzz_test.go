package discovery

import (
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// FuzzParse holds Parse to its rules for any input: it never panics, and whatever it
// accepts names exactly the configured issuer and only endpoints the token client
// would send credentials to.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"issuer":"https://as.example.com","token_endpoint":"https://as.example.com/token"}`,
		`{"issuer":"https://as.example.com","token_endpoint":"https://as.example.com/token","token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_jwt","tls_client_auth","self_signed_tls_client_auth"],"mtls_endpoint_aliases":{"token_endpoint":"https://mtls.as.example.com/token"}}`,
		`{"issuer":"https://as.example.com","token_endpoint":"http://as.example.com/token"}`,
		`{"issuer":"https://as.example.com","token_endpoint":"http://127.0.0.1:1/token","mtls_endpoint_aliases":null}`,
		`{"issuer":"https://other.example.com","token_endpoint":"https://as.example.com/token"}`,
		`{"issuer":null}`, `[]`, `null`, ``, `{"issuer":"https://as.example.com","token_endpoint":"https://as.example.com/token","issuer":"https://x"}`,
	} {
		f.Add([]byte(seed))
	}
	const iss = "https://as.example.com"
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body, iss)
		if err != nil {
			return
		}
		if m.Issuer != iss {
			t.Fatalf("accepted issuer %q, want %q", m.Issuer, iss)
		}
		for _, mtls := range []bool{false, true} {
			if err := oauth.CheckTokenURL(m.TokenURL(mtls)); err != nil {
				t.Fatalf("accepted endpoint %v: %v", m.TokenURL(mtls), err)
			}
		}
		if m.AuthMethods == nil {
			t.Fatal("accepted a document with a nil method list")
		}
	})
}
