// Command fakeproviders serves fake token endpoints of the five seed dialects on
// 127.0.0.1 and prints a registry for them, so the function can be run on this
// machine without a partner account and without writing Go. It runs until
// interrupted.
//
// The registry goes to standard output (or to the -o file); what it did goes to
// standard error. When AWS_ENDPOINT_URL is set (LocalStack, say), each provider's
// client credentials are stored in that endpoint's Secrets Manager under the
// registry's secret_id; otherwise the secrets' JSON is printed, to be stored by hand.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "fakeproviders:", err)
		os.Exit(2)
	}
}

// credentials are the client credentials the fake provider name accepts. They are
// fake, and printed; nothing real ever reaches these endpoints.
func credentials(name string) (clientID, clientSecret string) {
	return "fake-" + name, "fake secret " + name
}

// run serves the providers until ctx ends. The registry is complete on stdout (or
// in the -o file) before the "serving" line is written to stderr.
func run(ctx context.Context, stdout, stderr io.Writer, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("fakeproviders", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix := fs.String("secret-prefix", "fake/", "Secrets Manager name prefix of the providers' secrets (the stack's SecretNamePrefix)")
	outFile := fs.String("o", "", "write the registry to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var sm *secretsmanager.Client
	if getenv("AWS_ENDPOINT_URL") != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("AWS configuration: %w", err)
		}
		sm = secretsmanager.NewFromConfig(cfg)
	}

	srv := oauthtest.NewServer()
	defer srv.Close()
	var reg strings.Builder
	reg.WriteString("providers:\n")
	for _, dl := range oauthtest.Dialects() {
		name := string(dl)
		id, secret := credentials(name)
		u := srv.Add(oauthtest.Provider{Name: name, Dialect: dl, ClientID: id, ClientSecret: secret})
		secretID := *prefix + name
		reg.WriteString(registry.EntryYAML(name, secretID, dl.Endpoint(u)))
		if sm != nil {
			if _, err := localaws.PutSecret(ctx, sm, secretID, id, secret); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "stored secret %s in %s\n", secretID, getenv("AWS_ENDPOINT_URL"))
			continue
		}
		val, err := json.Marshal(map[string]string{"client_id": id, "client_secret": secret})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "secret %s: %s\n", secretID, val)
	}

	if *outFile != "" {
		if err := os.WriteFile(*outFile, []byte(reg.String()), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote the registry to %s\n", *outFile)
	} else if _, err := io.WriteString(stdout, reg.String()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "serving %d fake providers on %s until interrupted\n", len(oauthtest.Dialects()), srv.URL())
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil
	}
	return context.Cause(ctx)
}
