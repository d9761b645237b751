package registry

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// FuzzLoad feeds arbitrary documents to the loader. Whatever it is given, it must
// not panic; a registry it accepts holds only providers the function can use; every
// problem it reports wraps one of the package's sentinels or says the YAML is
// unreadable; and no header value, where API keys live, is echoed. Seed inputs are in
// testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("providers:\n  - {name: a, token_url: 'https://a.example/t', secret_id: a}\n"))
	f.Add([]byte(entryYAML("headers: {X-Api-Key: \"k3y-v4lue\\n\"}")))
	f.Add([]byte(entryYAML("response: {access_token: /a~1b}", "max_lifetime: 30d", "extra_params: {x: y}")))
	f.Fuzz(func(t *testing.T, doc []byte) {
		reg, err := Load(bytes.NewReader(doc), Options{})
		if err == nil {
			for _, p := range reg.Providers() {
				if !validName(p.Name) || oauth.CheckTokenURL(p.TokenURL) != nil || p.SecretID == "" ||
					!strings.HasPrefix(p.Parameter, DefaultParameterPrefix+"/") || p.MaxLifetime <= 0 {
					t.Fatalf("got provider %+v, want only providers the function can use", p)
				}
				for _, v := range p.Headers {
					if hasControl(v) {
						t.Fatalf("got a header value with a control character, want it refused")
					}
				}
			}
			return
		}
		for _, e := range allErrors(err) {
			if !knownProblem(e) && !strings.Contains(e.Error(), "not valid YAML") {
				t.Fatalf("got %v, want a problem that wraps a sentinel or says the YAML is invalid", e)
			}
		}
	})
}

func knownProblem(err error) bool {
	for _, s := range []error{ErrNoProviders, errUnknownField, errDuplicateKey, errRequired, errDuplicate,
		errReserved, errOutsidePrefix, errInvalid, errInvalidPointer} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
