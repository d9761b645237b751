package authservers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KeycloakHome is where `make authservers-deps` unpacks and builds Keycloak,
// relative to the repository's root.
const KeycloakHome = ".cache/authservers/keycloak-26.7.3"

// keycloakRealm is the realm the clients are registered in.
const keycloakRealm = "interop"

// StartKeycloak starts Keycloak (Maven Central's keycloak-quarkus-dist, built
// once for an in-memory database) with clients in a realm of their own, and an
// introspection client. Keycloak speaks client_secret_basic, client_secret_jwt,
// private_key_jwt and tls_client_auth (its X.509 client authenticator, by subject
// DN); it has no self_signed_tls_client_auth. It runs until ctx ends or Close.
func StartKeycloak(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(root, filepath.FromSlash(KeycloakHome))
	if _, err := os.Stat(filepath.Join(dist, ".built")); err != nil {
		return nil, fmt.Errorf("keycloak is not built in %s: run make authservers-deps", dist)
	}
	javaHome, err := jdkHome(21)
	if err != nil {
		return nil, fmt.Errorf("keycloak: %w", err)
	}
	for _, c := range clients {
		if c.Method == SelfSignedTLSClientAuth {
			return nil, fmt.Errorf("keycloak has no %s", c.Method)
		}
	}
	srvCert, err := pki.Server()
	if err != nil {
		return nil, err
	}
	s := &Server{roots: pki, secret: randomString(introspectorSecretLength)}
	home, err := keycloakHomeDir(dist, tmp)
	if err != nil {
		return nil, err
	}
	realm, err := json.Marshal(keycloakRealmRep(append([]Client{{ID: introspectorID, Secret: s.secret, Method: ClientSecretBasic}}, clients...)))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"data/import/realm.json": realm,
		"conf/server.key":        srvCert.KeyPEM,
		"conf/server.crt":        srvCert.CertPEM,
		"conf/client-ca.pem":     pki.CAPEM,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(home, filepath.FromSlash(name)), b, 0o600); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mgmt, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(home, "conf")
	// The JVM is started as kc.sh starts it, but directly: kc.sh runs java as a
	// child of its own, so that stopping kc.sh (ctx ending, Close) would leave the
	// JVM running. A small heap, the serial collector and a JIT that stops at its
	// first tier: the server answers a few dozen requests in a test, on shared cores.
	args := []string{
		"-Xms64m", "-Xmx512m", "-XX:MaxMetaspaceSize=256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-XX:+ExitOnOutOfMemoryError", "-Djava.security.egd=file:/dev/urandom", "-Dfile.encoding=UTF-8",
		"-Duser.language=en", "-Duser.country=US",
		"--add-opens=java.base/java.util=ALL-UNNAMED", "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
		"--add-opens=java.base/java.security=ALL-UNNAMED", "--add-opens=java.base/java.lang=ALL-UNNAMED",
		"--enable-native-access=ALL-UNNAMED",
		"-Dkc.home.dir=" + home, "-Djboss.server.config.dir=" + conf,
		"-Djava.util.logging.manager=org.jboss.logmanager.LogManager", "-Dpicocli.disable.closures=true",
		"-Djava.util.concurrent.ForkJoinPool.common.threadFactory=io.quarkus.bootstrap.forkjoin.QuarkusForkJoinWorkerThreadFactory",
		"-cp", filepath.Join(home, "lib", "quarkus-run.jar"), "io.quarkus.bootstrap.runner.QuarkusEntryPoint",
		"start", "--optimized", "--import-realm",
		"--http-enabled=false", "--http-host=127.0.0.1", "--https-port=" + strconv.Itoa(port),
		"--http-management-port=" + strconv.Itoa(mgmt),
		"--https-certificate-file=" + filepath.Join(conf, "server.crt"),
		"--https-certificate-key-file=" + filepath.Join(conf, "server.key"),
		// Every client is asked for a certificate (--https-client-auth=request, a
		// build option: make sets it), none is made to give one: the X.509
		// authenticator decides per client. The handshake accepts only a chain to
		// the client CA.
		"--truststore-paths=" + filepath.Join(conf, "client-ca.pem"),
		"--hostname-strict=false", "--cache=local", "--log-level=info",
	}
	cmd := exec.CommandContext(ctx, filepath.Join(javaHome, "bin", "java"), args...)
	s.Issuer = "https://127.0.0.1:" + strconv.Itoa(port) + "/realms/" + keycloakRealm
	if err := s.startLogged(ctx, cmd, "Listening on: https://127.0.0.1:"+strconv.Itoa(port)); err != nil {
		return nil, fmt.Errorf("keycloak: %w", err)
	}
	return s, nil
}

// jdkHome finds a JDK of at least version min: JAVA_HOME, then those under
// /usr/lib/jvm, as scripts/authservers/keycloak/java-home.sh does for make.
func jdkHome(min int) (string, error) {
	candidates, _ := filepath.Glob("/usr/lib/jvm/*")
	if h := os.Getenv("JAVA_HOME"); h != "" {
		candidates = append([]string{h}, candidates...)
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "bin", "java")); err != nil {
			continue
		}
		if v := javaVersion(filepath.Join(dir, "release")); v >= min {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no Java %d or later found in JAVA_HOME or /usr/lib/jvm: install a JDK %d+", min, min)
}

// javaVersion is the feature version in a JDK's release file, 0 when unknown.
func javaVersion(release string) int {
	f, err := os.Open(release)
	if err != nil {
		return 0
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), `JAVA_VERSION="`); ok {
			major, _, _ := strings.Cut(v, ".")
			n, _ := strconv.Atoi(strings.TrimSuffix(major, `"`))
			return n
		}
	}
	return 0
}

// keycloakHomeDir makes a Keycloak home of the test's own under tmp: the built
// distribution's lib, providers and themes shared (read only), and conf and data
// directories of its own, so that tests in several work trees never share an
// import directory or a certificate.
func keycloakHomeDir(dist, tmp string) (string, error) {
	home := filepath.Join(tmp, "keycloak")
	for _, d := range []string{"conf", "data/import"} {
		if err := os.MkdirAll(filepath.Join(home, filepath.FromSlash(d)), 0o700); err != nil {
			return "", err
		}
	}
	for _, d := range []string{"lib", "providers", "themes"} {
		if err := os.Symlink(filepath.Join(dist, d), filepath.Join(home, d)); err != nil {
			return "", err
		}
	}
	return home, nil
}

// keycloakRealmRep is the realm to import: every client confidential, with only
// the client credentials grant (a service account), and the "api" scope in its
// tokens.
func keycloakRealmRep(clients []Client) map[string]any {
	var reps []map[string]any
	for _, c := range clients {
		attrs := map[string]string{}
		rep := map[string]any{
			"clientId": c.ID, "enabled": true, "protocol": "openid-connect", "publicClient": false,
			"standardFlowEnabled": false, "directAccessGrantsEnabled": false, "implicitFlowEnabled": false,
			"serviceAccountsEnabled": c.ID != introspectorID, "defaultClientScopes": []string{"api"},
			"attributes": attrs,
		}
		if c.SigningAlg != "" {
			attrs["token.endpoint.auth.signing.alg"] = c.SigningAlg
		}
		switch c.Method {
		case ClientSecretBasic:
			rep["clientAuthenticatorType"], rep["secret"] = "client-secret", c.Secret
		case ClientSecretJWT:
			rep["clientAuthenticatorType"], rep["secret"] = "client-secret-jwt", c.Secret
		case PrivateKeyJWT:
			jwks, _ := json.Marshal(map[string]any{"keys": c.JWKS})
			rep["clientAuthenticatorType"] = "client-jwt"
			attrs["use.jwks.string"], attrs["jwks.string"], attrs["use.jwks.url"] = "true", string(jwks), "false"
		case TLSClientAuth:
			rep["clientAuthenticatorType"] = "client-x509"
			attrs["x509.subjectdn"], attrs["x509.allow.regex.pattern.comparison"] = c.SubjectDN, "false"
		}
		reps = append(reps, rep)
	}
	return map[string]any{
		"realm": keycloakRealm, "enabled": true,
		"clientScopes": []map[string]any{{
			"name": "api", "protocol": "openid-connect",
			"attributes": map[string]string{"include.in.token.scope": "true"},
			"protocolMappers": []map[string]any{{
				// The client_id claim, as Keycloak's own service_account scope adds it.
				"name": "client_id", "protocol": "openid-connect", "protocolMapper": "oidc-usersessionmodel-note-mapper",
				"config": map[string]string{"user.session.note": "client_id", "claim.name": "client_id",
					"jsonType.label": "String", "access.token.claim": "true", "introspection.token.claim": "true"},
			}, {
				// The introspection client in the audience: Keycloak tells any other
				// client that a token is inactive ("Client 'introspector' is not in the
				// token audience").
				"name": "introspector", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
				"config": map[string]string{"included.client.audience": introspectorID,
					"access.token.claim": "true", "introspection.token.claim": "true"},
			}},
		}},
		"clients": reps,
	}
}

// freePort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startLogged runs cmd, a server that logs each event on a line of its standard
// output, and waits for a line holding ready. A line logged at ERROR before that
// is a failed start (Keycloak logs why, then exits): the server is given a moment
// to log the rest of its reason, stopped, and its log returned, as it is when the
// server exits or ctx ends first.
func (s *Server) startLogged(ctx context.Context, cmd *exec.Cmd, ready string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return err
	}
	s.stderr = &strings.Builder{}
	log := &limited{w: s.stderr, n: 16 << 10}
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var failed *time.Timer
	for lines.Scan() {
		line := lines.Text()
		_, _ = log.Write([]byte(line + "\n"))
		if failed == nil && strings.Contains(line, ready) {
			s.cmd, s.done = cmd, make(chan error, 1)
			go func() {
				// Keep the rest of the log (the server's reasons for refusals), and
				// never block the server on a full pipe.
				for lines.Scan() {
					_, _ = log.Write([]byte(lines.Text() + "\n"))
				}
				r.Close()
				s.done <- cmd.Wait()
			}()
			s.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}}
			return nil
		}
		if failed == nil && logLevel(line) == "ERROR" {
			failed = time.AfterFunc(2*time.Second, func() { _ = cmd.Process.Kill() })
		}
	}
	r.Close()
	if failed != nil {
		failed.Stop()
	}
	werr := cmd.Wait()
	switch {
	case failed != nil:
		return fmt.Errorf("%s failed to start: %s", cmd.Path, s.stderr.String())
	case ctx.Err() != nil:
		return fmt.Errorf("%w before %s listened: %s", ctx.Err(), cmd.Path, s.stderr.String())
	default:
		return fmt.Errorf("%s exited before listening (%v): %s", cmd.Path, werr, s.stderr.String())
	}
}

// logLevel is the level of a JBoss log line ("2006-01-02 15:04:05,000 ERROR
// [category] ..."), "" for any other line.
func logLevel(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 || len(f[0]) != len("2006-01-02") {
		return ""
	}
	return f[2]
}
