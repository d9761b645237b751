package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/kmssign"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// names is a flag that may be given more than once.
type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	probe := fs.Bool("probe", false, "also request a token from each provider with its real secret; nothing is published")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	tokenPrefix := fs.String("token-prefix", registry.DefaultParameterPrefix, "the deployment's TOKEN_PARAMETER_PREFIX, which parameters must lie under")
	var only names
	fs.Var(&only, "provider", "probe only this `NAME` (may be repeated)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: tokenctl check [-probe] [-provider NAME]... [-json] FILE")
		return exitUsage
	}
	file := fs.Arg(0)
	reg, err := registry.LoadFile(file, registry.Options{ParameterPrefix: *tokenPrefix})
	if err != nil {
		// Every problem at once, each with the file, provider, field and line.
		fmt.Fprintln(stdout, err)
		return exitProblem
	}
	if !*probe {
		if *asJSON {
			return writeJSON(stdout, map[string]any{"file": file, "providers": reg.Len(), "valid": true})
		}
		fmt.Fprintf(stdout, "%s: %d providers, no problems\n", file, reg.Len())
		printProviders(stdout, reg)
		return exitOK
	}

	targets := []string{"*"}
	if len(only) > 0 {
		targets = only
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "AWS configuration:", err)
		return exitUsage
	}
	// A dry-run rotation, as the function would make it, with a store that holds
	// no token and refuses every write: a probe cannot publish anything.
	r := &refresher.Refresher{
		Providers: reg,
		Secrets:   &secrets.Source{API: secretsmanager.NewFromConfig(cfg)},
		Store:     noStore{},
		Client:    &oauth.Client{UserAgent: "token-refresher check"},
		Keys:      kmssign.Keys{API: kms.NewFromConfig(cfg)},
		Discovery: discovery.NewCache(&discovery.Fetcher{}, 0, nil),
	}
	res, runErr := r.Run(ctx, refresher.Request{Action: refresher.ActionRotate, Providers: targets, Trigger: "check", DryRun: true})
	if errors.Is(runErr, refresher.ErrUnknownProvider) {
		fmt.Fprintln(stderr, runErr)
		return exitUsage
	}
	if *asJSON {
		if code := writeJSON(stdout, res); code != exitOK {
			return code
		}
	} else {
		printProbes(stdout, res)
	}
	if runErr != nil {
		return exitProblem
	}
	return exitOK
}

func printProviders(w io.Writer, reg *registry.Registry) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tTOKEN ENDPOINT\tAUTH\tBODY\tSECRET\tPARAMETER\tVERIFY")
	for _, p := range reg.Providers() {
		verify := "-"
		if p.Verify != nil {
			verify = p.Verify.URL.Host + p.Verify.URL.Path
		}
		printRow(tw, safe(p.Name, maxName), safe(endpointOf(p), maxField), safe(string(p.AuthMethod), maxName),
			safe(string(p.RequestFormat), maxName), safe(p.SecretID, maxField), safe(p.Parameter, maxField), safe(verify, maxField))
	}
	tw.Flush()
}

// endpointOf is where a provider's token endpoint is: its host and path, or the
// issuer whose metadata names it.
func endpointOf(p registry.Provider) string {
	if p.TokenURL == nil {
		return "issuer " + p.Issuer
	}
	return p.TokenURL.Host + p.TokenURL.Path
}

func printProbes(w io.Writer, res refresher.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tRESULT\tTYPE\tLIFETIME\tSCOPE\tJWT EXP\tJWT AUD\tJWT ISS\tFINGERPRINT\tAUTH\tTOKEN ENDPOINT\tSERVER LISTS\tCERTIFICATE\tNOTE")
	for _, o := range res.Results {
		name := safe(o.Provider, maxName)
		if o.Probe == nil {
			printRow(tw, name, safe(string(o.Status), maxName), "-", "-", "-", "-", "-", "-", safe(o.Error, maxErrTxt), "-", "-", "-", "-", "-")
			continue
		}
		p := o.Probe
		exp, aud, iss := "-", "-", "-"
		if p.JWT != nil {
			exp, aud, iss = dash(safe(p.JWT.Exp, maxName)), dash(safe(strings.Join(p.JWT.Audience, ","), maxField)), dash(safe(p.JWT.Issuer, maxField))
		}
		// What discovery found, and the certificate presented: what an operator
		// checks against what the partner registered.
		cert := "-"
		if p.Certificate != nil {
			cert = safe(p.Certificate.Subject, maxField) + " until " + safe(p.Certificate.NotAfter, maxName)
		}
		printRow(tw, name, "ok", safe(p.TokenType, maxName), human(time.Duration(p.Lifetime)*time.Second),
			dash(safe(p.Scope, maxScope)), exp, aud, iss, safe(p.Fingerprint, maxName),
			dash(safe(p.AuthMethod, maxName)), dash(safe(p.TokenEndpoint, maxField)), dash(safe(strings.Join(p.AuthMethodsSupported, ","), maxField)),
			cert, dash(safe(o.Note, maxErrTxt)))
	}
	tw.Flush()
}

// printRow writes one table row of fields already made safe.
func printRow(w io.Writer, fields ...string) {
	fmt.Fprintln(w, strings.Join(fields, "\t"))
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitUsage
	}
	return exitOK
}

// noStore is the token store of a probe: no token is published, and a write is an
// error, so that nothing a probe does can reach consumers.
type noStore struct{}

func (noStore) Current(context.Context) (store.Published, error) {
	return store.Published{Tokens: map[string]tokens.Token{}, Malformed: map[string]error{}, Versions: map[string]int64{}}, nil
}

func (n noStore) Tokens(ctx context.Context, _ []string) (store.Published, error) {
	return n.Current(ctx)
}

func (noStore) Metadata(context.Context, []string) (map[string]store.Info, error) {
	return map[string]store.Info{}, nil
}

func (noStore) Publish(context.Context, store.Write) (tokens.Token, error) {
	return tokens.Token{}, errors.New("a probe publishes nothing")
}
