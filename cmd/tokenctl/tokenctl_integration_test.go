//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/internal/secrets"
	"github.com/token-refresher/token-refresher/internal/state"
	"github.com/token-refresher/token-refresher/internal/store"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// deployment is the refresher wired to LocalStack as the function wires it, with
// fake providers, and what status and check need to read it.
type deployment struct {
	t                        *testing.T
	ctx                      context.Context
	srv                      *oauthtest.Server
	tokenPrefix, statePrefix string
	regFile                  string
	api                      *ssm.Client
	store                    *store.Store
	h                        *refresher.Handler
}

// newDeployment sets it up; extra, when not nil, gives more YAML lines for a
// provider's entry, once the fake providers are up.
func newDeployment(t *testing.T, extra func(d *deployment, name string) string) *deployment {
	cfg := awstest.Config(t)
	root, secretBase := awstest.Parameters(t, cfg, "ctl-"), awstest.Secrets(t, cfg, "ctl-")
	d := &deployment{t: t, ctx: context.Background(), srv: oauthtest.NewServer(),
		tokenPrefix: root + "/tokens", statePrefix: root + "/state", api: ssm.NewFromConfig(cfg)}
	t.Cleanup(d.srv.Close)
	sm := secretsmanager.NewFromConfig(cfg)
	var reg strings.Builder
	reg.WriteString("providers:\n")
	dialects := []oauthtest.Dialect{oauthtest.ECard, oauthtest.Cardlytics}
	urls := map[string]string{}
	for _, dl := range dialects {
		name := string(dl)
		urls[name] = d.srv.Add(oauthtest.Provider{Name: name, Dialect: dl, ClientID: "id-" + name, ClientSecret: "secret " + name})
		awstest.PutSecret(t, sm, secretBase+name, "id-"+name, "secret "+name)
	}
	for _, dl := range dialects {
		name := string(dl)
		reg.WriteString(registry.EntryYAML(name, secretBase+name, dl.Endpoint(urls[name])))
		if extra != nil {
			if e := extra(d, name); e != "" {
				reg.WriteString("    " + e + "\n")
			}
		}
	}
	d.regFile = filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(d.regFile, []byte(reg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	providers, err := registry.LoadFile(d.regFile, registry.Options{ParameterPrefix: d.tokenPrefix})
	if err != nil {
		t.Fatal(err)
	}
	d.store = &store.Store{API: d.api, Prefix: d.tokenPrefix}
	d.h = &refresher.Handler{Refresher: &refresher.Refresher{
		Providers: providers, Secrets: &secrets.Source{API: sm}, Store: d.store,
		State: &state.Store{API: d.api, Prefix: d.statePrefix}, Client: &oauth.Client{InitialBackoff: time.Millisecond, MaxAttempts: 1},
	}}
	return d
}

func (d *deployment) handle(event string) {
	d.t.Helper()
	_, _ = d.h.Handle(d.ctx, json.RawMessage(event))
}

// status runs `tokenctl status` and returns its rows and exit code.
func (d *deployment) status() (map[string]Row, int, string) {
	d.t.Helper()
	var out, errOut, table bytes.Buffer
	code := run(d.ctx, []string{"status", "-json", "-providers", d.regFile, "-token-prefix", d.tokenPrefix, "-state-prefix", d.statePrefix}, &out, &errOut)
	var rs []Row
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		d.t.Fatalf("status: %v\n%s%s", err, out.String(), errOut.String())
	}
	run(d.ctx, []string{"status", "-providers", d.regFile, "-token-prefix", d.tokenPrefix, "-state-prefix", d.statePrefix}, &table, &errOut)
	m := map[string]Row{}
	for _, r := range rs {
		m[r.Provider] = r
	}
	return m, code, table.String()
}

// TestIntegrationStatusTransitions drives a provider through every state the
// refresher records, healthy → degraded → failing → healthy, against LocalStack,
// and checks what `tokenctl status` says and its exit code at each step.
func TestIntegrationStatusTransitions(t *testing.T) {
	d := newDeployment(t, nil)
	d.handle(`{"action":"rotate","providers":["*"]}`)
	rows, code, table := d.status()
	if code != exitOK || rows["ecard"].State != state.Healthy || rows["cardlytics"].State != state.Healthy {
		t.Fatalf("after publishing: got exit %d, want %d with both providers healthy:\n%s", code, exitOK, table)
	}
	c := rows["cardlytics"]
	issued := d.srv.Stats("cardlytics").Issued
	if c.SecondsLeft < 3500 || c.Fingerprint != tokens.Fingerprint(issued[len(issued)-1]) || c.NextRefresh.IsZero() || c.IssuedAt.IsZero() {
		t.Fatalf("cardlytics %+v: want at least 3500 s left, the fingerprint of the last token issued, issue and next refresh times", c)
	}
	if strings.Contains(table, issued[len(issued)-1]) || !strings.Contains(table, "PROVIDER") {
		t.Fatalf("table:\n%s\nwant a PROVIDER header and no access token", table)
	}

	// The provider fails while its token is still valid: degraded, exit 0.
	d.srv.SetFault("cardlytics", oauthtest.Fault{Kind: oauthtest.ServerError})
	d.handle(`{"action":"rotate","providers":["cardlytics"]}`)
	rows, code, table = d.status()
	if c := rows["cardlytics"]; code != exitOK || c.State != state.Degraded || c.ConsecutiveFailures != 1 || !strings.Contains(c.LastError, "500") {
		t.Fatalf("degraded, exit %d:\n%s", code, table)
	}

	// Its token expires while it keeps failing: failing, exit 1.
	now := time.Now()
	expired := tokens.Token{AccessToken: "expired-token", TokenType: "Bearer", Provider: "cardlytics", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	cur, err := d.store.Current(d.ctx)
	if err != nil {
		t.Fatal(err)
	}
	param := d.tokenPrefix + "/cardlytics"
	if _, err := d.store.Publish(d.ctx, store.Write{Parameter: param, Token: expired, After: cur.Versions[param]}); err != nil {
		t.Fatal(err)
	}
	d.handle(`{"action":"refresh"}`)
	rows, code, table = d.status()
	if c := rows["cardlytics"]; code != exitProblem || c.State != state.Failing || c.ConsecutiveFailures != 2 || rows["ecard"].State != state.Healthy {
		t.Fatalf("failing, exit %d:\n%s", code, table)
	}
	t.Logf("status while failing:\n%s", table)

	// It answers again: healthy, exit 0, the last failure kept.
	d.srv.SetFault("cardlytics", oauthtest.Fault{})
	d.handle(`{"action":"refresh"}`)
	rows, code, table = d.status()
	if c := rows["cardlytics"]; code != exitOK || c.State != state.Healthy || c.ConsecutiveFailures != 0 || c.LastFailure.IsZero() {
		t.Fatalf("recovered, exit %d:\n%s", code, table)
	}
}

// TestIntegrationCheckProbe: check -probe requests a token from each provider with
// its real secret and reports it, and publishes nothing.
func TestIntegrationCheckProbe(t *testing.T) {
	d := newDeployment(t, nil)
	var out, errOut bytes.Buffer
	code := run(d.ctx, []string{"check", "-probe", "-json", "-token-prefix", d.tokenPrefix, d.regFile}, &out, &errOut)
	var res refresher.Result
	if code != exitOK || json.Unmarshal(out.Bytes(), &res) != nil || len(res.Results) != 2 {
		t.Fatalf("got exit %d, want %d and two results: %s %s", code, exitOK, out.String(), errOut.String())
	}
	for _, o := range res.Results {
		issued := d.srv.Stats(o.Provider).Issued
		if o.Status != refresher.StatusChecked || o.Probe == nil || len(issued) != 1 || o.Probe.Fingerprint != tokens.Fingerprint(issued[0]) ||
			strings.Contains(out.String(), issued[0]) {
			t.Fatalf("got %+v; want status %s with a probe of the one token issued, its fingerprint and not the token shown", o, refresher.StatusChecked)
		}
	}
	published, err := d.api.GetParametersByPath(d.ctx, &ssm.GetParametersByPathInput{Path: aws.String(d.tokenPrefix), Recursive: aws.Bool(true)})
	if err != nil || len(published.Parameters) != 0 {
		t.Fatalf("a probe published %d parameters (error %v), want 0", len(published.Parameters), err)
	}
	out.Reset()
	if code := run(d.ctx, []string{"check", "-probe", "-provider", "ecard", "-token-prefix", d.tokenPrefix, d.regFile}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "ecard") || strings.Contains(out.String(), "cardlytics") || !strings.Contains(out.String(), "JWT EXP") {
		t.Fatalf("got exit %d, want %d with ecard only and a JWT EXP column:\n%s", code, exitOK, out.String())
	}
	t.Logf("check -probe:\n%s", out.String())
}

// TestIntegrationVerifyBeforePublish: a token is published only when the partner's
// API accepts it; one it refuses keeps the published token and fails the provider
// with the answer's status. Both providers verify against ecard's partner API,
// which accepts ecard's latest token only: ecard passes, cardlytics is refused.
func TestIntegrationVerifyBeforePublish(t *testing.T) {
	d := newDeployment(t, func(d *deployment, name string) string {
		return "verify: {url: '" + d.srv.APIURL("ecard") + "/v1/ping', expect: [200]}"
	})
	d.handle(`{"action":"rotate","providers":["*"]}`)
	rows, code, table := d.status()
	if code != exitProblem || rows["ecard"].State != state.Healthy || rows["cardlytics"].State != state.Failing ||
		!strings.Contains(rows["cardlytics"].LastError, "answered 401, want 200") {
		t.Fatalf("got exit %d, want %d with ecard healthy and cardlytics failing on the 401:\n%s\n%+v", code, exitProblem, table, rows["cardlytics"])
	}
	if d.srv.Stats("ecard").APIAccepted != 1 || len(d.srv.Stats("cardlytics").Issued) != 1 {
		t.Fatalf("ecard API accepted %d, cardlytics issued %d; want 1 and 1", d.srv.Stats("ecard").APIAccepted, len(d.srv.Stats("cardlytics").Issued))
	}
}
