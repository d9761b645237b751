package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/registry"
)

const providersUsage = `usage:
  tokenctl providers list [flags]
  tokenctl providers get [flags] NAME
  tokenctl providers put [-probe] [flags] FILE
  tokenctl providers rm [flags] NAME
flags: -bucket B (REGISTRY_BUCKET, the stack's RegistryBucket output), -key K (REGISTRY_KEY),
       -token-prefix P, -secret-prefix P (SECRET_NAME_PREFIX, the stack's SecretNamePrefix)`

// providersOpts are the settings every providers subcommand shares.
type providersOpts struct {
	bucket, key, tokenPrefix, secretPrefix string
}

func (o providersOpts) registryOptions() registry.Options {
	return registry.Options{ParameterPrefix: o.tokenPrefix}
}

// providers changes and shows the registry a deployed stack reads from S3.
func providers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, providersUsage)
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("providers "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o providersOpts
	fs.StringVar(&o.bucket, "bucket", os.Getenv("REGISTRY_BUCKET"), "the stack's registry `BUCKET` (its RegistryBucket output)")
	fs.StringVar(&o.key, "key", cmp.Or(os.Getenv("REGISTRY_KEY"), catalog.DefaultKey), "the registry's object `KEY`")
	fs.StringVar(&o.tokenPrefix, "token-prefix", registry.DefaultParameterPrefix, "the deployment's TOKEN_PARAMETER_PREFIX")
	fs.StringVar(&o.secretPrefix, "secret-prefix", cmp.Or(os.Getenv("SECRET_NAME_PREFIX"), "token-refresher/"),
		"the stack's SecretNamePrefix: the function can read only secrets whose name starts with it")
	probe := fs.Bool("probe", false, "put: first request a token from each provider of FILE with its real secret, publishing nothing")
	wantArgs := map[string]int{"list": 0, "get": 1, "put": 1, "rm": 1}
	n, known := wantArgs[sub]
	if !known {
		fmt.Fprintf(stderr, "tokenctl providers: unknown command %q\n%s\n", sub, providersUsage)
		return exitUsage
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != n {
		fmt.Fprintln(stderr, providersUsage)
		return exitUsage
	}
	if *probe && sub != "put" {
		fmt.Fprintln(stderr, "-probe is for put")
		return exitUsage
	}
	var file []byte
	if sub == "put" {
		// Everything offline first: nothing is stored, and AWS not even asked,
		// when any entry is invalid.
		var code int
		if file, code = validateForPut(fs.Arg(0), o, stdout); code != exitOK {
			return code
		}
		if *probe {
			if code := check(ctx, []string{"-probe", "-token-prefix", o.tokenPrefix, fs.Arg(0)}, stdout, stderr); code != exitOK {
				fmt.Fprintln(stdout, "probe failed: nothing was stored")
				return code
			}
		}
	}
	if o.bucket == "" {
		fmt.Fprintln(stderr, "tokenctl providers: give -bucket or REGISTRY_BUCKET: the stack's RegistryBucket output")
		return exitUsage
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "AWS configuration:", err)
		return exitUsage
	}
	st := &catalog.Store{API: catalog.NewClient(cfg), Bucket: o.bucket, Key: o.key, Options: o.registryOptions()}
	switch sub {
	case "list":
		return listProviders(ctx, st, stdout, stderr)
	case "get":
		entry, err := st.Entry(ctx, fs.Arg(0))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return registryExit(err)
		}
		fmt.Fprint(stdout, storedText(string(entry)))
		return exitOK
	case "put":
		ch, err := st.Put(ctx, file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return registryExit(err)
		}
		fmt.Fprintf(stdout, "stored s3://%s/%s version %s: added %s; replaced %s\n", o.bucket, o.key, ch.VersionID, namesOrNone(ch.Added), namesOrNone(ch.Replaced))
		fmt.Fprintln(stdout, "the function reads it at its next run")
		return exitOK
	default: // rm
		return removeProvider(ctx, st, fs.Arg(0), stdout, stderr)
	}
}

// validateForPut loads FILE with the strict loader and checks every secret_id against
// the secret name prefix, reporting every problem at once.
func validateForPut(path string, o providersOpts, stdout io.Writer) ([]byte, int) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return nil, exitUsage
	}
	reg, err := registry.LoadFile(path, o.registryOptions())
	if err != nil {
		fmt.Fprintln(stdout, err)
		fmt.Fprintln(stdout, "nothing was stored")
		return nil, exitProblem
	}
	var outside []string
	for _, p := range reg.Providers() {
		if !strings.HasPrefix(secretName(p.SecretID), o.secretPrefix) {
			outside = append(outside, fmt.Sprintf("%s: provider %q: secret_id %q is outside the secret name prefix %q, which the function cannot read",
				path, p.Name, p.SecretID, o.secretPrefix))
		}
	}
	if len(outside) > 0 {
		fmt.Fprintln(stdout, strings.Join(outside, "\n"))
		fmt.Fprintln(stdout, "nothing was stored")
		return nil, exitProblem
	}
	return data, exitOK
}

// secretName is the name in a secret id: the id itself, or what follows
// "secret:" in an ARN (with the random suffix of a full ARN, which the prefix
// test does not mind).
func secretName(id string) string {
	if !strings.HasPrefix(id, "arn:") {
		return id
	}
	if _, name, ok := strings.Cut(id, ":secret:"); ok {
		return name
	}
	return id
}

func listProviders(ctx context.Context, st *catalog.Store, stdout, stderr io.Writer) int {
	reg, doc, err := st.Load(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return registryExit(err)
	}
	if reg == nil {
		fmt.Fprintf(stdout, "no providers (s3://%s/%s %s)\n", st.Bucket, st.Key, registryVersion(doc))
		return exitOK
	}
	plural := "s"
	if reg.Len() == 1 {
		plural = ""
	}
	fmt.Fprintf(stdout, "%d provider%s (s3://%s/%s %s)\n", reg.Len(), plural, st.Bucket, st.Key, registryVersion(doc))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tTOKEN ENDPOINT\tSECRET\tPARAMETER")
	for _, p := range reg.Providers() {
		endpoint := endpointOf(p)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, storedText(endpoint), p.SecretID, p.Parameter)
	}
	tw.Flush()
	return exitOK
}

func removeProvider(ctx context.Context, st *catalog.Store, name string, stdout, stderr io.Writer) int {
	reg, _, err := st.Load(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return registryExit(err)
	}
	param := ""
	if reg != nil {
		if p, ok := reg.Lookup(name); ok {
			param = p.Parameter
		}
	}
	ch, err := st.Remove(ctx, name)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return registryExit(err)
	}
	fmt.Fprintf(stdout, "removed %s (s3://%s/%s version %s): the function no longer refreshes it from its next run\n", name, st.Bucket, st.Key, ch.VersionID)
	fmt.Fprintf(stdout, "its published token (%s) stays until it expires; delete the parameter to withdraw it sooner\n", param)
	return exitOK
}

// registryExit maps a registry error to an exit code: a refusal is a problem, anything
// else (AWS, access) is an error.
func registryExit(err error) int {
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrInvalid) {
		return exitProblem
	}
	return exitUsage
}

func registryVersion(doc catalog.Document) string {
	if !doc.Exists {
		return "not stored yet"
	}
	return "version " + doc.VersionID
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// storedText replaces control characters other than newline and tab, so text read
// from the store cannot drive the terminal it is printed on.
func storedText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r >= 0x20 && r != 0x7f && (r < 0x80 || r > 0x9f) {
			return r
		}
		return '\uFFFD'
	}, s)
}
