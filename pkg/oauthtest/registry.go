package oauthtest

import (
	"fmt"
	"sort"
	"strings"
)

// RegistryEntry returns one provider registry entry (YAML, as in
// functions/refresher/providers.yaml) for a provider of dialect d at tokenURL: the
// configuration, and nothing else, that makes the refresher speak d. Tests, the
// benchmark and the demo build their registries from it, so every one of them
// proves that the dialects work from configuration alone.
func RegistryEntry(name, tokenURL, secretID string, d Dialect) string {
	req := d.Requirements()
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    token_url: %s\n    secret_id: %s\n", name, tokenURL, secretID)
	if req.AuthMethod != "client_secret_post" {
		fmt.Fprintf(&b, "    auth_method: %s\n", req.AuthMethod)
	}
	if req.RequestFormat != "form" {
		fmt.Fprintf(&b, "    request_format: %s\n", req.RequestFormat)
	}
	if req.ScopeRequired {
		b.WriteString("    scope: \"organizations-read organizations-write webhooks-write\"\n")
	}
	if len(req.Headers) > 0 {
		keys := make([]string, 0, len(req.Headers))
		for k := range req.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("    headers:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, req.Headers[k])
		}
	}
	return b.String()
}
