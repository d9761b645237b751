package authservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SpringJar is where `make authservers-deps` builds Spring Authorization Server's
// loopback app, relative to the repository's root.
const SpringJar = "scripts/authservers/spring/target/spring-authserver.jar"

// StartSpring starts Spring Authorization Server (Maven Central, run by `java
// -jar`) with clients, and an introspection client of its own. It speaks every
// method here: client_secret_basic, client_secret_jwt, private_key_jwt,
// tls_client_auth and self_signed_tls_client_auth. It runs until ctx ends or Close.
func StartSpring(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	jar := filepath.Join(root, filepath.FromSlash(SpringJar))
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("the Spring Authorization Server jar is not built at %s: run make authservers-deps", jar)
	}
	s, confPath, err := configure(pki, tmp, "spring.json", true, clients, nil)
	if err != nil {
		return nil, err
	}
	// A small heap and a JIT that stops at its first tier: the server answers a
	// few dozen requests in a test, on shared cores.
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
		"-Djava.security.egd=file:/dev/./urandom", "-jar", jar, confPath)
	return s, s.start(cmd)
}
