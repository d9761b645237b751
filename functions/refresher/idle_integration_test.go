//go:build integration

package main

import (
	"context"
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
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestIntegrationIdleRunCalls counts, in the SDK, the AWS calls of a scheduled
// run with nothing due, as main wires the function, at two sizes: after a run that
// published every token, it reads the run record and nothing else (one call, no
// Secrets Manager, no provider, no write), whatever the number of providers; a
// full reconcile reads every token. Counted, not timed.
func TestIntegrationIdleRunCalls(t *testing.T) {
	cfg := awstest.Config(t)
	srv := oauthtest.NewServer()
	defer srv.Close()
	sm := secretsmanager.NewFromConfig(cfg)
	secretBase := awstest.Secrets(t, cfg, "idle-")
	paramRoot := awstest.Parameters(t, cfg, "idle-")
	const largest = 300
	urls := make([]string, largest)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range largest {
		name := fmt.Sprintf("p%03d", i)
		urls[i] = srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "id-" + name, ClientSecret: "secret " + name})
		g.Go(func() error {
			_, err := localaws.PutSecret(context.Background(), sm, secretBase+name, "id-"+name, "secret "+name)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, largest} {
		t.Run(fmt.Sprintf("providers=%d", n), func(t *testing.T) {
			var reg strings.Builder
			reg.WriteString("providers:\n")
			for i := range n {
				name := fmt.Sprintf("p%03d", i)
				reg.WriteString(registry.EntryYAML(name, secretBase+name, oauthtest.Cardlytics.Endpoint(urls[i])))
			}
			regFile := filepath.Join(t.TempDir(), "providers.yaml")
			if err := os.WriteFile(regFile, []byte(reg.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			root := fmt.Sprintf("%s/n%d", paramRoot, n)
			vars := map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": root + "/tokens", "STATE_PARAMETER_PREFIX": root + "/state",
				"PUT_PARAMETER_RATE": "0"} // the first run writes every token: no budget
			e, err := loadEnv(func(k string) string { return vars[k] }, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, calls := awstest.Counted(cfg)
			handler := func() *refresher.Handler { // a new one: a cold start
				return newHandler(c, e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
			}
			ctx := context.Background()
			if res, err := handler().Handle(ctx, json.RawMessage(`{"action":"rotate","providers":["*"]}`)); err != nil || res.Counts()[refresher.StatusRefreshed] != n {
				t.Fatalf("publishing: %v %v", err, res.Counts())
			}
			scheduled := json.RawMessage(`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
			for _, h := range []*refresher.Handler{handler(), handler()} {
				calls.Reset()
				before := srv.TotalRequests()
				res, err := h.Handle(ctx, scheduled)
				if err != nil || !res.Idle {
					t.Fatalf("%v %+v", err, res)
				}
				if calls.Total() != 1 || calls.Count("SSM.GetParameter") != 1 || calls.Service("Secrets Manager") != 0 || srv.TotalRequests() != before {
					t.Fatalf("an idle run made %d AWS calls (%d SSM.GetParameter, %d Secrets Manager) and %d provider calls",
						calls.Total(), calls.Count("SSM.GetParameter"), calls.Service("Secrets Manager"), srv.TotalRequests()-before)
				}
			}
			calls.Reset()
			if res, err := handler().Handle(ctx, json.RawMessage(`{"action":"refresh"}`)); err != nil || res.Idle || res.Counts()[refresher.StatusSkipped] != n {
				t.Fatalf("full reconcile: %v %+v", err, res.Counts())
			}
			// It decides from the tokens' metadata, fifty to a call, and decrypts none.
			if pages := calls.Count("SSM.DescribeParameters"); pages < (n+49)/50 || calls.Decrypted() != 0 || calls.Service("Secrets Manager") != 0 {
				t.Fatalf("a full reconcile of %d tokens made %d DescribeParameters calls, decrypted %d tokens and made %d Secrets Manager calls; want at least %d, 0, 0",
					n, pages, calls.Decrypted(), calls.Service("Secrets Manager"), (n+49)/50)
			}
		})
	}
}

// TestIntegrationPlanDecryptsNothing: a run that reads every token's state, with
// and without fan-out, decides from the parameters' metadata and decrypts no token
// (no KMS request on AWS) while nothing is due; a token published by an older
// version, whose description says less, is read and decided on as before: kept
// while valid, refreshed when expired, and then described in full.
func TestIntegrationPlanDecryptsNothing(t *testing.T) {
	cfg := awstest.Config(t)
	srv := oauthtest.NewServer()
	defer srv.Close()
	sm := secretsmanager.NewFromConfig(cfg)
	secretBase := awstest.Secrets(t, cfg, "plan-")
	root := awstest.Parameters(t, cfg, "plan-")
	n := 12 // PLAN_PROVIDERS measures more (docs/performance.md, KMS)
	if v, err := strconv.Atoi(os.Getenv("PLAN_PROVIDERS")); err == nil && v >= 12 {
		n = v
	}
	var reg strings.Builder
	reg.WriteString("providers:\n")
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		name := fmt.Sprintf("p%02d", i)
		u := srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "id-" + name, ClientSecret: "secret " + name})
		g.Go(func() error {
			_, err := localaws.PutSecret(context.Background(), sm, secretBase+name, "id-"+name, "secret "+name)
			return err
		})
		reg.WriteString(registry.EntryYAML(name, secretBase+name, oauthtest.Cardlytics.Endpoint(u)))
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	regFile := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(regFile, []byte(reg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"PROVIDERS_FILE": regFile, "TOKEN_PARAMETER_PREFIX": root + "/tokens", "STATE_PARAMETER_PREFIX": root + "/state",
		"PUT_PARAMETER_RATE": "0"}
	c, calls := awstest.Counted(cfg)
	handler := func(queueURL string) *refresher.Handler {
		vars["REFRESH_QUEUE_URL"] = queueURL
		e, err := loadEnv(func(k string) string { return vars[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		return newHandler(c, e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	}
	ctx := context.Background()
	if res, err := handler("").Handle(ctx, json.RawMessage(`{"action":"rotate","providers":["*"]}`)); err != nil || res.Counts()[refresher.StatusRefreshed] != n {
		t.Fatalf("publishing: %v %v", err, res.Counts())
	}
	refresh := json.RawMessage(`{"action":"refresh"}`)
	// A planner with nothing due sends nothing: its queue is never asked.
	for mode, queueURL := range map[string]string{"single": "", "fanout": "https://sqs.us-east-1.amazonaws.com/000000000000/unused.fifo"} {
		calls.Reset()
		res, err := handler(queueURL).Handle(ctx, refresh)
		if err != nil || res.Counts()[refresher.StatusSkipped] != n {
			t.Fatalf("%s: %v %v", mode, err, res.Counts())
		}
		if calls.Decrypted() != 0 || calls.Count("SSM.DescribeParameters") == 0 {
			t.Fatalf("%s: got %d tokens decrypted and %d DescribeParameters calls, want none decrypted, decided from metadata",
				mode, calls.Decrypted(), calls.Count("SSM.DescribeParameters"))
		}
		t.Logf("plan: providers=%d mode=%s nothing due: calls=%d DescribeParameters=%d decrypted=%d", n, mode, calls.Total(),
			calls.Count("SSM.DescribeParameters"), calls.Decrypted())
	}

	// One token in ten due (ten minutes left, inside the 15-minute window): refreshed
	// without any token decrypted.
	api := ssm.NewFromConfig(cfg)
	st := &store.Store{API: api, Prefix: root + "/tokens"}
	var soon []string
	for i := 0; i < n; i += 10 {
		soon = append(soon, fmt.Sprintf("%s/tokens/p%02d", root, i))
	}
	published, err := st.Metadata(ctx, soon)
	if err != nil {
		t.Fatal(err)
	}
	due := 0
	for i := 0; i < n; i += 10 {
		name := fmt.Sprintf("p%02d", i)
		param := root + "/tokens/" + name
		now := time.Now().UTC().Truncate(time.Second)
		tok := tokens.Token{AccessToken: "soon-" + name, TokenType: "Bearer", Provider: name, IssuedAt: now.Add(-50 * time.Minute), ExpiresAt: now.Add(10 * time.Minute)}
		// After the version published: a write over it, not one that overlapped it.
		if _, err := st.Publish(ctx, store.Write{Parameter: param, Token: tok, After: published[param].Version}); err != nil {
			t.Fatal(err)
		}
		due++
	}
	calls.Reset()
	if res, err := handler("").Handle(ctx, refresh); err != nil || res.Counts()[refresher.StatusRefreshed] != due {
		t.Fatalf("one in ten due: %v %v, want %d refreshed", err, res.Counts(), due)
	}
	if calls.Decrypted() != 0 {
		t.Fatalf("one in ten due: got %d tokens decrypted, want 0", calls.Decrypted())
	}
	t.Logf("plan: providers=%d mode=single due=%d: calls=%d DescribeParameters=%d PutParameter=%d decrypted=%d", n, due, calls.Total(),
		calls.Count("SSM.DescribeParameters"), calls.Count("SSM.PutParameter"), calls.Decrypted())

	// Two tokens as an older version published them: the same value, a description
	// without the secret versions; one of them expired.
	old := func(name string, expires time.Time) {
		now := time.Now().UTC().Truncate(time.Second)
		tok := tokens.Token{AccessToken: "old-" + name, TokenType: "Bearer", Provider: name, IssuedAt: now.Add(-time.Hour), ExpiresAt: expires.UTC().Truncate(time.Second)}
		value, err := tok.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		desc := fmt.Sprintf("token-refresher: provider=%s issued_at=%s expires_at=%s fingerprint=%s", name,
			tok.IssuedAt.Format(time.RFC3339), tok.ExpiresAt.Format(time.RFC3339), tokens.Fingerprint(tok.AccessToken))
		if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(root + "/tokens/" + name), Value: aws.String(string(value)),
			Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true), Description: aws.String(desc)}); err != nil {
			t.Fatal(err)
		}
	}
	old("p00", time.Now().Add(2*time.Hour))
	old("p01", time.Now().Add(-time.Minute))
	calls.Reset()
	res, err := handler("").Handle(ctx, refresh)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]refresher.Status{}
	for _, o := range res.Results {
		got[o.Provider] = o.Status
	}
	if got["p00"] != refresher.StatusSkipped || got["p01"] != refresher.StatusRefreshed || got["p02"] != refresher.StatusSkipped {
		t.Fatalf("got p00 %s, p01 %s, p02 %s; want skipped, refreshed, skipped", got["p00"], got["p01"], got["p02"])
	}
	if d := calls.Decrypted(); d != 2 {
		t.Fatalf("got %d tokens decrypted, want 2: only the older version's", d)
	}
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(root + "/tokens/p01"), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokens.Parse([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil || !tok.Valid(time.Now()) || tok.AccessToken == "old-p01" {
		t.Fatalf("got p01's published token %v (valid %v), want a new valid one", err, tok.Valid(time.Now()))
	}
	infos, err := (&store.Store{API: api, Prefix: root + "/tokens"}).Metadata(ctx, []string{root + "/tokens/p01"})
	if err != nil || !infos[root+"/tokens/p01"].Complete {
		t.Fatalf("got p01's metadata %+v (%v), want it complete after the refresh", infos[root+"/tokens/p01"], err)
	}
}
