//go:build integration

package main

// BenchmarkKMSSigned counts what signing client assertions in KMS costs: N
// providers authenticating with private_key_jwt, all signing with one RSA_2048
// key in LocalStack's KMS through an alias, rotated together by the function as
// main wires it, against a token endpoint (oauthtest.KeyServer) that verifies
// every assertion with the key's public half. It reports the kms:Sign and
// kms:GetPublicKey calls per refreshed provider, and the cycle's time.
//
// Settings: BENCH_KMS_PROVIDERS (default "10,100").

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

const (
	opKMSSign         = "KMS.Sign"
	opKMSGetPublicKey = "KMS.GetPublicKey"
)

func BenchmarkKMSSigned(b *testing.B) {
	cfg := awstest.Config(b)
	ctx := context.Background()
	kc := kms.NewFromConfig(cfg)
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecRsa2048, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		b.Fatalf("CreateKey: %v", err)
	}
	keyID := aws.ToString(key.KeyMetadata.Arn)
	b.Cleanup(func() {
		_, _ = kc.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)})
	})
	alias := "alias/" + awstest.UniqueName("kms-bench-")
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = kc.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: aws.String(alias)})
	})
	out, err := kc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		b.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	srv := oauthtest.NewKeyServer()
	b.Cleanup(srv.Close)

	for _, n := range kmsBenchSizes(b) {
		b.Run(fmt.Sprintf("providers=%d", n), func(b *testing.B) {
			base := awstest.Secrets(b, cfg, "kms-bench-")
			prefix := awstest.Parameters(b, cfg, "kms-bench-") + "/tokens"
			sm := secretsmanager.NewFromConfig(cfg)
			var reg strings.Builder
			reg.WriteString("providers:\n")
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(8)
			for i := range n {
				name, id := benchName(i), fmt.Sprintf("kms-bench-id-%d-%d", n, i)
				srv.Add(oauthtest.KeyClient{ID: id, Method: oauth.PrivateKeyJWT, PublicKey: pub})
				reg.WriteString(registry.EntryYAML(name, base+name, oauth.Endpoint{TokenURL: srv.TokenURL(), AuthMethod: oauth.PrivateKeyJWT}))
				reg.WriteString("    signing_key: kms:" + alias + "\n")
				g.Go(func() error {
					v, _ := json.Marshal(map[string]string{"client_id": id})
					_, err := sm.CreateSecret(gctx, &secretsmanager.CreateSecretInput{Name: aws.String(base + name), SecretString: aws.String(string(v))})
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			regFile := filepath.Join(b.TempDir(), "providers.yaml")
			if err := os.WriteFile(regFile, []byte(reg.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			var calls localaws.Calls
			vars := map[string]string{
				"PROVIDERS_FILE":         regFile,
				"TOKEN_PARAMETER_PREFIX": prefix,
				"STATE_PARAMETER_PREFIX": strings.TrimSuffix(prefix, "/tokens") + "/state",
				"PUT_PARAMETER_RATE":     "10000", // the counts, not the write budget
				"MAX_CONCURRENCY":        os.Getenv("MAX_CONCURRENCY"),
			}
			e, err := loadEnv(func(k string) string { return vars[k] }, nil)
			if err != nil {
				b.Fatal(err)
			}
			h := newHandler(awstest.CountedIn(cfg, &calls), e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
			// As main wires it, but trusting the test server's certificate.
			h.Refresher.Client = &oauth.Client{UserAgent: "token-refresher", HTTPClient: srv.Client(), InitialBackoff: time.Millisecond}
			rotate := func() {
				b.Helper()
				res, err := h.Handle(ctx, rotateAll)
				if err != nil {
					b.Fatalf("rotate: %v", err)
				}
				if got := res.Counts()[refresher.StatusRefreshed]; got != n {
					b.Fatalf("rotate refreshed %d of %d: %v", got, n, res.Counts())
				}
			}
			rotate() // the first publication, and a warm environment

			var cycle time.Duration
			var sign, getPub int
			b.ResetTimer()
			for range b.N {
				calls.Reset()
				start := time.Now()
				rotate()
				cycle += time.Since(start)
				sign, getPub = calls.Count(opKMSSign), calls.Count(opKMSGetPublicKey)
			}
			b.StopTimer()
			cycle /= time.Duration(b.N)
			fmt.Printf("\nbench: kms providers=%d private_key_jwt via alias, warm rotation: kms_sign=%d kms_get_public_key=%d aws_calls=%d cycle_ms=%d\n",
				n, sign, getPub, calls.Total(), cycle.Milliseconds())
			b.ReportMetric(float64(sign)/float64(n), "kms_sign/provider")
			b.ReportMetric(float64(getPub)/float64(n), "kms_getpublickey/provider")
			b.ReportMetric(float64(cycle.Milliseconds()), "cycle_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func kmsBenchSizes(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(envStr("BENCH_KMS_PROVIDERS", "10,100"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			b.Fatalf("BENCH_KMS_PROVIDERS=%q: want a comma-separated list of numbers from 1 to 1000", os.Getenv("BENCH_KMS_PROVIDERS"))
		}
		out = append(out, n)
	}
	return out
}
