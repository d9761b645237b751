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
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
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
			if pages := calls.Count("SSM.GetParametersByPath"); pages < (n+9)/10 || calls.Service("Secrets Manager") != 0 {
				t.Fatalf("a full reconcile of %d tokens read %d pages and made %d Secrets Manager calls", n, pages, calls.Service("Secrets Manager"))
			}
		})
	}
}
