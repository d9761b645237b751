package authservers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// StartFosite starts ory/fosite (Go, built into .cache/authservers/fosite by make
// authservers-deps) with clients, and an introspection client of its own. fosite
// speaks client_secret_basic and private_key_jwt; it has neither client_secret_jwt
// nor mutual TLS. It runs until ctx ends or Close.
func StartFosite(ctx context.Context, pki *PKI, clients []Client, tmp string) (*Server, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, ".cache", "authservers", "fosite")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("fosite is not built at %s: run make authservers-deps", bin)
	}
	srvCert, err := pki.Server()
	if err != nil {
		return nil, err
	}
	s := &Server{roots: pki, secret: randomString(introspectorSecretLength)}
	meta := []map[string]any{{"client_id": introspectorID, "client_secret": s.secret, "token_endpoint_auth_method": ClientSecretBasic}}
	for _, c := range clients {
		if c.Method != ClientSecretBasic && c.Method != PrivateKeyJWT {
			return nil, fmt.Errorf("fosite has no %s", c.Method)
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
	confPath := filepath.Join(tmp, "fosite.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	return s, s.start(exec.CommandContext(ctx, bin, confPath))
}
