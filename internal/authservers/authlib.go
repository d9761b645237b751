package authservers

import (
	"context"
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
	for _, c := range clients {
		if c.Method == TLSClientAuth || c.Method == SelfSignedTLSClientAuth {
			return nil, fmt.Errorf("authlib has no %s", c.Method)
		}
	}
	s, confPath, err := configure(pki, tmp, "authlib.json", false, clients, nil)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "scripts", "authservers", "authlib", "server.py"), confPath)
	return s, s.start(cmd)
}
