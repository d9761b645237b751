// Package awstest connects integration tests to the AWS emulator (LocalStack) that
// `make test` starts. Integration tests carry the build tag "integration" and fail,
// never skip, when the emulator is not reachable: a test run that silently checked
// nothing against AWS would prove nothing. What programs other than tests need of
// the emulator is in package localaws.
package awstest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/localaws"
)

// Config returns an AWS configuration for the emulator named by AWS_ENDPOINT_URL and
// checks that it answers. It fails the test when AWS_ENDPOINT_URL is unset or does not
// point at a loopback address, so that tests never touch a real account.
func Config(t testing.TB) aws.Config {
	t.Helper()
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		t.Fatal("AWS_ENDPOINT_URL is not set: integration tests run against LocalStack; use `make test` (or `localstack/launcher run -- go test -tags integration ./...`)")
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") && !strings.HasPrefix(endpoint, "http://localhost:") {
		t.Fatalf("AWS_ENDPOINT_URL=%s is not a loopback emulator; refusing to run integration tests against it", endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(cmp.Or(os.Getenv("AWS_REGION"), "us-east-1")),
	)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("the emulator at %s does not answer: %v", endpoint, err)
	}
	return cfg
}

// UniqueName returns prefix followed by a random suffix, so tests that share one
// emulator never see each other's secrets and parameters.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Counted returns a copy of cfg whose clients count every AWS call they make in
// the returned counter, so a test can hold the code to a number of calls.
func Counted(cfg aws.Config) (aws.Config, *localaws.Calls) {
	calls := &localaws.Calls{}
	return CountedIn(cfg, calls), calls
}

// CountedIn is Counted with a counter the caller keeps, so that the clients of
// several configurations, or of several runs, are counted in one place.
func CountedIn(cfg aws.Config, calls *localaws.Calls) aws.Config {
	c := cfg.Copy()
	// Copy shares the slice: appending to it in place could change what another
	// copy of cfg counts.
	c.APIOptions = append(slices.Clone(cfg.APIOptions), calls.Middleware)
	return c
}

// Parameters returns a parameter path of the test's own, "/" followed by a
// UniqueName of prefix, and deletes every parameter under it when the test ends:
// tests sharing one emulator see neither each other's parameters nor leftovers.
func Parameters(t testing.TB, cfg aws.Config, prefix string) string {
	t.Helper()
	root := "/" + UniqueName(prefix)
	t.Cleanup(func() {
		ctx := context.Background()
		api := ssm.NewFromConfig(cfg)
		var names []string
		p := ssm.NewGetParametersByPathPaginator(api, &ssm.GetParametersByPathInput{Path: aws.String(root), Recursive: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Errorf("clean up %s: %v", root, err)
				return
			}
			for _, prm := range page.Parameters {
				names = append(names, aws.ToString(prm.Name))
			}
		}
		for len(names) > 0 {
			n := min(len(names), 10) // DeleteParameters' limit
			if _, err := api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: names[:n]}); err != nil {
				t.Errorf("clean up %s: %v", root, err)
				return
			}
			names = names[n:]
		}
	})
	return root
}

// Secrets returns a secret name prefix of the test's own, a UniqueName of prefix
// followed by "/", and deletes every secret whose name starts with it when the test
// ends.
func Secrets(t testing.TB, cfg aws.Config, prefix string) string {
	t.Helper()
	base := UniqueName(prefix) + "/"
	t.Cleanup(func() {
		ctx := context.Background()
		api := secretsmanager.NewFromConfig(cfg)
		p := secretsmanager.NewListSecretsPaginator(api, &secretsmanager.ListSecretsInput{
			Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{base}}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Errorf("clean up %s: %v", base, err)
				return
			}
			for _, sec := range page.SecretList {
				if !strings.HasPrefix(aws.ToString(sec.Name), base) {
					continue // the filter matches words, not only prefixes
				}
				if _, err := api.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
					SecretId: sec.ARN, ForceDeleteWithoutRecovery: aws.Bool(true),
				}); err != nil {
					t.Errorf("clean up %s: %v", aws.ToString(sec.Name), err)
				}
			}
		}
	})
	return base
}

// PutSecret stores client credentials as the secret id, as the function expects
// them, and returns the new version's id; the test fails when it cannot. Call it
// from the test's goroutine; from others, use localaws.PutSecret.
func PutSecret(t testing.TB, sm localaws.SecretWriter, id, clientID, clientSecret string) string {
	t.Helper()
	v, err := localaws.PutSecret(context.Background(), sm, id, clientID, clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Credentials are the client credentials of one secret, as PutSecrets stores them.
type Credentials struct {
	ClientID, ClientSecret string
}

// PutSecrets stores the credentials of every secret id in secrets, eight at once,
// since a test of many providers would otherwise spend most of its time here; the
// test fails when any cannot be stored.
func PutSecrets(t testing.TB, sm localaws.SecretWriter, secrets map[string]Credentials) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for id, c := range secrets {
		g.Go(func() error {
			_, err := localaws.PutSecret(context.Background(), sm, id, c.ClientID, c.ClientSecret)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// EnvInt reads a benchmark's whole-number setting from the environment: def when
// the variable is unset, and the test fails when it is not a number of 0 or more.
func EnvInt(tb testing.TB, key string, def int) int {
	tb.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q: want a whole number", key, v)
	}
	return n
}
