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
	jar, err := builtJar(SpringJar, "the Spring Authorization Server jar")
	if err != nil {
		return nil, err
	}
	s, confPath, err := configure(pki, tmp, "spring.json", true, clients, nil)
	if err != nil {
		return nil, err
	}
	return s, s.start(javaJar(ctx, jar, confPath))
}

// builtJar is the absolute path of the jar `make authservers-deps` builds at rel
// (relative to the repository's root), or an error naming what to run.
func builtJar(rel, what string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	jar := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("%s is not built at %s: run make authservers-deps", what, jar)
	}
	return jar, nil
}

// javaJar runs a loopback server's jar with its configuration: a small heap and a
// JIT that stops at its first tier, since a server answers a few dozen requests in
// a test, on shared cores.
func javaJar(ctx context.Context, jar, conf string) *exec.Cmd {
	return exec.CommandContext(ctx, "java", "-Xmx256m", "-Xss512k", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
		"-Djava.security.egd=file:/dev/./urandom", "-jar", jar, conf)
}
