package authservers

import "context"

// NimbusJar is where `make authservers-deps` builds the loopback app around the
// Connect2id Nimbus OAuth 2.0 SDK, relative to the repository's root.
const NimbusJar = "scripts/authservers/nimbus/target/nimbus-authserver.jar"

// StartNimbus starts the Nimbus OAuth 2.0 SDK's server side (Maven Central, run by
// `java -jar`) with clients, and an introspection client of its own. The SDK
// verifies every method here: client_secret_basic, client_secret_jwt,
// private_key_jwt, tls_client_auth and self_signed_tls_client_auth; mutual TLS only
// at the token endpoint's mtls_endpoint_aliases entry. It runs until ctx ends or Close.
func StartNimbus(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	jar, err := builtJar(NimbusJar, "the Nimbus OAuth 2.0 SDK server jar")
	if err != nil {
		return nil, err
	}
	// The SDK reads grants and scope from RFC 7591 metadata, as oidc-provider does:
	// the client credentials grant and scope api for the test's clients, no grant for
	// the introspection client.
	s, confPath, err := configure(pki, tmp, "nimbus.json", true, clients, func(m map[string]any) {
		if m["client_id"] == introspectorID {
			m["grant_types"] = []string{}
		} else {
			m["grant_types"], m["scope"] = []string{"client_credentials"}, "api"
		}
	})
	if err != nil {
		return nil, err
	}
	return s, s.start(javaJar(ctx, jar, confPath))
}
