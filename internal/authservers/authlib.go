package authservers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// StartAuthlib starts Authlib (PyPI, behind Flask) with clients, and an
// introspection client of its own. Authlib speaks client_secret_basic,
// client_secret_jwt and private_key_jwt; it has no mutual TLS. It runs until ctx
// ends or Close.
func StartAuthlib(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	python := filepath.Join(root, ".venv", "authservers", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("authlib is not installed in %s: run make authservers-deps", filepath.Dir(python))
	}
	srvCert, err := pki.Server()
	if err != nil {
		return nil, err
	}
	s := &Server{roots: pki, secret: randomString(introspectorSecretLength)}
	meta := []map[string]any{{"client_id": introspectorID, "client_secret": s.secret, "token_endpoint_auth_method": ClientSecretBasic}}
	for _, c := range clients {
		if c.Method == TLSClientAuth || c.Method == SelfSignedTLSClientAuth {
			return nil, fmt.Errorf("authlib has no %s", c.Method)
		}
		m := map[string]any{"client_id": c.ID, "token_endpoint_auth_method": c.Method}
		if c.Secret != "" {
			m["client_secret"] = c.Secret
		}
		if c.JWKS != nil {
			m["jwks"] = map[string]any{"keys": c.JWKS}
		}
		meta = append(meta, m)
	}
	conf, err := json.Marshal(map[string]any{
		"tls":     map[string]string{"key": string(srvCert.KeyPEM), "cert": string(srvCert.CertPEM)},
		"clients": meta,
	})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(tmp, "authlib.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "scripts", "authservers", "authlib", "server.py"), confPath)
	return s, s.start(cmd)
}
