//go:build integration

package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

func TestIntegrationStore(t *testing.T) {
	cfg, calls := awstest.Counted(awstest.Config(t))
	ctx := context.Background()
	// LocalStack neither enforces nor reports parameter tiers faithfully, so the tier
	// is checked on the request the store sends and the value on what SSM returns.
	var tiers []types.ParameterTier
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("tier", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if put, ok := in.Parameters.(*ssm.PutParameterInput); ok {
				tiers = append(tiers, put.Tier)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
	client := ssm.NewFromConfig(cfg)
	prefix := awstest.Parameters(t, cfg, "store-") + "/tokens"
	s := &Store{API: client, Prefix: prefix}

	const n = 23
	for i := range n {
		if _, err := s.Publish(ctx, Write{Parameter: fmt.Sprintf("%s/p%02d", prefix, i), Token: token(fmt.Sprintf("p%02d", i), 100+i)}); err != nil {
			t.Fatal(err)
		}
	}
	calls.Reset()
	got, err := s.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tokens) != n || len(got.Malformed) != 0 {
		t.Fatalf("got %d tokens, %d malformed; want %d, 0", len(got.Tokens), len(got.Malformed), n)
	}
	if c := calls.Count("SSM.GetParametersByPath"); c != (n+9)/10 {
		t.Fatalf("got %d GetParametersByPath calls for %d parameters, want %d", c, n, (n+9)/10)
	}
	for i := range n {
		tok := got.Tokens[fmt.Sprintf("%s/p%02d", prefix, i)]
		if tok.AccessToken != strings.Repeat("a", 100+i) || !tok.ExpiresAt.Equal(t0.Add(3600e9)) {
			t.Fatalf("p%02d read back as %+v, want a %d-byte token expiring at %s", i, tok, 100+i, t0.Add(3600e9))
		}
	}

	// A worker's read: the named parameters only, ten to a GetParameters call, and a
	// name that was never written has no entry.
	calls.Reset()
	names := []string{prefix + "/missing"}
	for i := range n {
		names = append(names, fmt.Sprintf("%s/p%02d", prefix, i))
	}
	some, err := s.Tokens(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(some.Tokens) != n || some.Versions[prefix+"/p03"] != 1 || some.Tokens[prefix+"/p03"].AccessToken != strings.Repeat("a", 103) {
		t.Fatalf("Tokens: got %d tokens, p03 at version %d; want %d, version 1", len(some.Tokens), some.Versions[prefix+"/p03"], n)
	}
	if _, ok := some.Tokens[prefix+"/missing"]; ok {
		t.Fatal("a missing parameter read as a token")
	}
	if c := calls.Count("SSM.GetParameters"); c != (n+1+9)/10 {
		t.Fatalf("got %d GetParameters calls for %d names, want %d", c, n+1, (n+1+9)/10)
	}

	check := func(name string, size int, wantKey string) {
		t.Helper()
		out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Parameter.Type != types.ParameterTypeSecureString {
			t.Fatalf("%s: got type %s, want %s", name, out.Parameter.Type, types.ParameterTypeSecureString)
		}
		if tok, err := tokens.Parse([]byte(aws.ToString(out.Parameter.Value))); err != nil || len(tok.AccessToken) != size {
			t.Fatalf("%s: %v, token of %d bytes, want %d", name, err, len(tok.AccessToken), size)
		}
		desc, err := client.DescribeParameters(ctx, &ssm.DescribeParametersInput{
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{name}}},
		})
		if err != nil || len(desc.Parameters) != 1 {
			t.Fatalf("describe %s: got %d parameters, error %v; want 1", name, len(desc.Parameters), err)
		}
		meta := desc.Parameters[0]
		if wantKey != "" && !strings.HasSuffix(aws.ToString(meta.KeyId), wantKey) {
			t.Errorf("%s: key %s, want %s", name, aws.ToString(meta.KeyId), wantKey)
		}
	}

	// A token too large for the Standard tier goes Advanced.
	big := prefix + "/big"
	tiers = nil
	if _, err := s.Publish(ctx, Write{Parameter: big, Token: token("big", 5000)}); err != nil {
		t.Fatal(err)
	}
	check(big, 5000, "")
	if _, err := s.Publish(ctx, Write{Parameter: big, Token: token("big", 10), After: 1}); err != nil {
		t.Fatal(err)
	}
	check(big, 10, "")
	// The parameter is Advanced now: the small token goes Advanced in one call.
	if len(tiers) != 2 || tiers[0] != types.ParameterTierAdvanced || tiers[1] != types.ParameterTierAdvanced {
		t.Fatalf("got tiers sent %v, want [Advanced Advanced]", tiers)
	}

	// A customer managed key, as TOKEN_KMS_KEY_ID names it.
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("token-refresher store test")})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	withKey := &Store{API: client, Prefix: prefix, KMSKeyID: keyID}
	if _, err := withKey.Publish(ctx, Write{Parameter: prefix + "/kms", Token: token("kms", 50)}); err != nil {
		t.Fatal(err)
	}
	check(prefix+"/kms", 50, keyID)

	// Overwriting many times never fails: no labels, no tags.
	for i := range 5 {
		if _, err := s.Publish(ctx, Write{Parameter: prefix + "/p00", Token: token("p00", 100), After: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationStoreOverlappingWriters: against SSM's own versions and history,
// a run that publishes a shorter token just after an overlapping run published a
// longer one puts the longer one back; the versions Current reports are what
// PutParameter counts from.
func TestIntegrationStoreOverlappingWriters(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := ssm.NewFromConfig(cfg)
	prefix := awstest.Parameters(t, cfg, "store-") + "/tokens"
	s := &Store{API: client, Prefix: prefix}
	name := prefix + "/x"
	if _, err := s.Publish(ctx, Write{Parameter: name, Token: live("x", "before", 30*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	read, err := s.Current(ctx) // both runs read version 1
	if err != nil {
		t.Fatal(err)
	}
	after := read.Versions[name]
	if after != 1 {
		t.Fatalf("got version %d after one write, want 1", after)
	}
	if _, err := s.Publish(ctx, Write{Parameter: name, Token: live("x", "long", 2*time.Hour), After: after}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Publish(ctx, Write{Parameter: name, Token: live("x", "short", time.Hour), After: after})
	if err != nil {
		t.Fatal(err)
	}
	final, err := s.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "long" || final.Tokens[name].AccessToken != "long" || final.Versions[name] != 4 {
		t.Fatalf("Publish returned %q, published %q at version %d; want %q, %q at version 4", got.AccessToken, final.Tokens[name].AccessToken, final.Versions[name], "long", "long")
	}
	// The description follows the token that stayed, and says what status needs
	// without decrypting anything.
	infos, err := Describe(ctx, client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	info := infos[name]
	if info.Provider != "x" || info.Fingerprint != tokens.Fingerprint("long") || info.Version != 4 ||
		!info.ExpiresAt.Equal(final.Tokens[name].ExpiresAt) {
		t.Fatalf("Describe: got %+v, want provider %q, the fingerprint of %q, version 4, expiry %s", info, "x", "long", final.Tokens[name].ExpiresAt)
	}
}
