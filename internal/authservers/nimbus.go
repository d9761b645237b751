package authservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// NimbusJar is where `make authservers-deps` builds the loopback app around the
// Connect2id Nimbus OAuth 2.0 SDK, relative to the repository's root.
const NimbusJar = "scripts/authservers/nimbus/target/nimbus-authserver.jar"

// StartNimbus starts the Nimbus OAuth 2.0 SDK's server side (Maven Central, run by
// `java -jar`) with clients, and an introspection client of its own. The SDK
// verifies every method here: client_secret_basic, client_secret_jwt,
// private_key_jwt, tls_client_auth and self_signed_tls_client_auth; mutual TLS only
// at the token endpoint's mtls_endpoint_aliases entry. It runs until ctx ends or Close.
func StartNimbus(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	jar := filepath.Join(root, filepath.FromSlash(NimbusJar))
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("the Nimbus OAuth 2.0 SDK server jar is not built at %s: run make authservers-deps", jar)
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
	// As for Spring: a small heap and a JIT that stops at its first tier, for a few
	// dozen requests on shared cores.
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
		"-Djava.security.egd=file:/dev/./urandom", "-jar", jar, confPath)
	return s, s.start(cmd)
}
