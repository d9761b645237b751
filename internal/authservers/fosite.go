package authservers

import (
	"context"
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
	for _, c := range clients {
		if c.Method != ClientSecretBasic && c.Method != PrivateKeyJWT {
			return nil, fmt.Errorf("fosite has no %s", c.Method)
		}
	}
	s, confPath, err := configure(pki, tmp, "fosite.json", false, clients, nil)
	if err != nil {
		return nil, err
	}
	return s, s.start(exec.CommandContext(ctx, bin, confPath))
}
