package secrets

import "github.com/token-refresher/token-refresher/pkg/provider"

// match returns the id in ids that names the secret with this name or ARN, or "".
// BatchGetSecretValue answers with names and full ARNs, not necessarily as the
// secrets were asked for.
func match(ids []string, name, arn string) string {
	for _, id := range ids {
		if id == name || id == arn || provider.SameSecret(id, arn) || provider.SameSecret(id, name) {
			return id
		}
	}
	return ""
}
