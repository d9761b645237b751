package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// lockedBuffer is a bytes.Buffer that run may write while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPrintedRegistryServesTokens starts the program as `make fake-providers`
// does, loads the registry it prints with the strict loader, and gets a token from
// one of its endpoints with the credentials it prints.
func TestPrintedRegistryServesTokens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout lockedBuffer
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, &stdout, pw, []string{"-secret-prefix", "fake/"}, func(string) string { return "" })
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	secrets := map[string]string{}
	sc := bufio.NewScanner(pr)
	serving := false
	for sc.Scan() {
		line := sc.Text()
		if id, val, ok := strings.Cut(strings.TrimPrefix(line, "secret "), ": "); ok && strings.HasPrefix(line, "secret ") {
			secrets[id] = val
		}
		if strings.HasPrefix(line, "serving ") {
			serving = true
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !serving {
		t.Fatalf("no serving line; stdout:\n%s", stdout.String())
	}

	reg, err := registry.Load(strings.NewReader(stdout.String()), registry.Options{ParameterPrefix: "/fake/tokens"})
	if err != nil {
		t.Fatalf("load the printed registry: %v\n%s", err, stdout.String())
	}
	if got, want := len(reg.Providers()), 5; got != want {
		t.Fatalf("got %d providers, want %d", got, want)
	}
	for _, p := range reg.Providers() {
		if !strings.HasPrefix(p.TokenURL.String(), "http://127.0.0.1:") {
			t.Errorf("%s: got token URL %s, want one on 127.0.0.1", p.Name, p.TokenURL)
		}
		if _, ok := secrets[p.SecretID]; !ok {
			t.Errorf("%s: got no printed secret %s", p.Name, p.SecretID)
		}
	}

	p := reg.Providers()[3] // cardlytics
	id, secret := credentials(p.Name)
	if want := `{"client_id":"` + id + `","client_secret":"` + secret + `"}`; secrets[p.SecretID] != want {
		t.Errorf("got secret %s, want %s", secrets[p.SecretID], want)
	}
	tok, err := (&oauth.Client{}).Token(ctx, p.Endpoint, oauth.Credentials{ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatalf("token from %s: %v", p.Name, err)
	}
	if tok.AccessToken == "" {
		t.Errorf("got an empty access token from %s", p.Name)
	}
}
