// Command tokenctl is the operator's tool for the token refresher.
//
//	tokenctl status [-json] [-providers FILE | -bucket B] [-token-prefix P] [-state-prefix P]
//	tokenctl check [-probe] [-provider NAME]... [-json] FILE
//	tokenctl providers list | get NAME | put [-probe] FILE | rm NAME
//	tokenctl policy [-token-prefix P] [-providers FILE] [-kms-key ARN] [-region R] [-account ID] NAME...
//	tokenctl jwks (-kms KEY | -key FILE) [-cert FILE] [-kid KID] [-alg ALG]
//
// status prints one line per provider: its health, its token's expiry and time
// left, age, when it is next refreshed, and its last failure. It reads SSM only,
// and of the tokens only their metadata (DescribeParameters): never a token, never
// a secret. It exits 1 when any provider is failing, so it can gate a deploy.
//
// check validates a registry file offline and reports every problem at once, with
// file, provider, field and line. With -probe it also requests a token from each
// provider (or those named) with its real secret, as a dry-run rotation does, and
// reports what it got (type, lifetime, scope, the JWT claims exp, aud and iss, the
// fingerprint), publishing nothing.
//
// providers lists, shows, upserts and removes the providers of the registry a
// deployed stack reads from S3 (see "tokenctl providers" for its flags); put
// validates the whole file offline first and stores nothing when any entry is
// invalid or names a secret outside the stack's secret name prefix.
//
// policy prints the IAM policy JSON that lets a consumer read the tokens of exactly
// the named providers, and decrypt them only through SSM: least privilege per
// consumer, where the stack's TokenReadersPolicy grants every token. It reads nothing
// when -region and -account are given.
//
// jwks prints the JSON Web Key Set to register with a partner for private_key_jwt:
// the public key of an asymmetric KMS key (kms:GetPublicKey) or of a PEM file, its
// kid (the RFC 7638 thumbprint unless -kid says otherwise) and alg, and with -cert
// the certificate as x5c, x5t#S256 and x5t. Nothing private is ever printed.
//
// All use the AWS SDK's standard settings (AWS_ENDPOINT_URL for LocalStack). Exit
// codes: 0 all is well, 1 a provider is failing or a check failed, 2 usage or
// AWS errors.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "status":
		return status(ctx, args[1:], stdout, stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "providers":
		return providers(ctx, args[1:], stdout, stderr)
	case "policy":
		return policy(ctx, args[1:], stdout, stderr)
	case "jwks":
		return jwks(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "tokenctl: unknown command %q\n%s\n", args[0], usage)
	return exitUsage
}

const usage = `usage:
  tokenctl status [-json] [-providers FILE | -bucket B [-key K]] [-token-prefix PREFIX] [-state-prefix PREFIX]
  tokenctl check [-probe] [-provider NAME]... [-json] FILE
  tokenctl providers list | get NAME | put [-probe] FILE | rm NAME  [-bucket B] [-key K] [-secret-prefix P]
  tokenctl policy [-token-prefix PREFIX] [-providers FILE] [-kms-key ARN] [-region R] [-account ID] NAME...
  tokenctl jwks (-kms KEY | -key FILE) [-cert FILE] [-kid KID] [-alg ALG]`
