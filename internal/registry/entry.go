package registry

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// EntryYAML renders one entry of a providers list, indented as Load reads it, for
// a provider name whose credentials are the secret secretID and whose token
// endpoint is e. Only what differs from the defaults is written, so the entry
// reads as an operator would write it. Tests, the benchmark and the demo build
// their registries with it, which proves that each dialect works from
// configuration alone.
func EntryYAML(name, secretID string, e oauth.Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    token_url: %s\n    secret_id: %s\n", name, e.TokenURL, secretID)
	if e.AuthMethod != "" && e.AuthMethod != oauth.ClientSecretPost {
		fmt.Fprintf(&b, "    auth_method: %s\n", e.AuthMethod)
	}
	if e.BasicEncoding != "" && e.BasicEncoding != oauth.BasicForm {
		fmt.Fprintf(&b, "    basic_auth_encoding: %s\n", e.BasicEncoding)
	}
	if e.RequestFormat != "" && e.RequestFormat != oauth.FormRequest {
		fmt.Fprintf(&b, "    request_format: %s\n", e.RequestFormat)
	}
	if e.Scope != "" {
		fmt.Fprintf(&b, "    scope: %q\n", e.Scope)
	}
	if e.Audience != "" {
		fmt.Fprintf(&b, "    audience: %q\n", e.Audience)
	}
	writeMap(&b, "extra_params", e.ExtraParams)
	writeMap(&b, "headers", e.Headers)
	if r := e.Response; r != (oauth.ResponseFields{}) {
		b.WriteString("    response:\n")
		for _, f := range [][2]string{{"access_token", r.AccessToken}, {"token_type", r.TokenType}, {"expires_in", r.ExpiresIn}, {"scope", r.Scope}} {
			if f[1] != "" {
				fmt.Fprintf(&b, "      %s: %q\n", f[0], f[1])
			}
		}
	}
	if e.SigningAlg != "" {
		fmt.Fprintf(&b, "    signing_alg: %s\n", e.SigningAlg)
	}
	if e.KeyID != "" {
		fmt.Fprintf(&b, "    key_id: %q\n", e.KeyID)
	}
	if e.AssertionAudience != "" {
		fmt.Fprintf(&b, "    assertion_audience: %q\n", e.AssertionAudience)
	}
	if e.DefaultLifetime > 0 {
		fmt.Fprintf(&b, "    default_lifetime: %s\n", e.DefaultLifetime)
	}
	return b.String()
}

func writeMap(b *strings.Builder, field string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(b, "    %s:\n", field)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(b, "      %s: %q\n", k, m[k])
	}
}
