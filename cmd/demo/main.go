// Command demo shows the refresher's main job on this machine, with no AWS account:
// against the LocalStack that `make demo` starts, it serves fake token endpoints
// speaking the five seed dialects, stores their client credentials in Secrets
// Manager, runs the refresher command as a user would (`refresher -event FILE`),
// runs it again to show nothing is due, rotates one token, and reads a token back
// through pkg/tokens the way a consumer Lambda does.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/registry"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

const prefix = "/token-refresher-demo/tokens"

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

type demo struct {
	out     io.Writer
	aws     aws.Config
	srv     *oauthtest.Server
	bin     string
	regFile string
}

func run(ctx context.Context, out io.Writer) error {
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		return errors.New("AWS_ENDPOINT_URL is not set: run `make demo`, which starts LocalStack first")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	tmp, err := os.MkdirTemp("", "token-refresher-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	d := &demo{out: out, aws: cfg, srv: oauthtest.NewServer(), bin: filepath.Join(tmp, "refresher"), regFile: filepath.Join(tmp, "providers.yaml")}
	defer d.srv.Close()

	d.step("Building the refresher (go build ./functions/refresher)")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", d.bin, "./functions/refresher").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}

	d.step("Fake providers on %s, one per seed dialect; client credentials into Secrets Manager", d.srv.URL())
	var reg strings.Builder
	reg.WriteString("providers:\n")
	sm := secretsmanager.NewFromConfig(cfg)
	for _, dl := range oauthtest.Dialects() {
		name := string(dl)
		id, secret := "demo-"+name, "demo-secret-"+name
		u := d.srv.Add(oauthtest.Provider{Name: name, Dialect: dl, ClientID: id, ClientSecret: secret})
		if _, err := localaws.PutSecret(ctx, sm, "token-refresher/"+name, id, secret); err != nil {
			return err
		}
		reg.WriteString(registry.EntryYAML(name, "token-refresher/"+name, dl.Endpoint(u)))
		fmt.Fprintf(out, "  %-13s %s  secret token-refresher/%s\n", name, u, name)
	}
	if err := os.WriteFile(d.regFile, []byte(reg.String()), 0o600); err != nil {
		return err
	}

	d.step("Run 1, the schedule's event (events/scheduled.json): every token is due")
	if err := d.invoke(ctx, "events/scheduled.json"); err != nil {
		return err
	}
	d.step("Run 2, the same event again: nothing is due, no provider is asked")
	before := d.srv.TotalRequests()
	if err := d.invoke(ctx, "events/scheduled.json"); err != nil {
		return err
	}
	fmt.Fprintf(out, "  provider requests during run 2: %d\n", d.srv.TotalRequests()-before)

	d.step("Run 3, a manual rotation of one provider (events/rotate-one.json)")
	if err := d.invoke(ctx, "events/rotate-one.json"); err != nil {
		return err
	}
	return d.consume(ctx)
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> "+format+"\n", args...)
}

// invoke runs the refresher command with an event and prints its result as a table.
func (d *demo) invoke(ctx context.Context, event string) error {
	cmd := exec.CommandContext(ctx, d.bin, "-event", event)
	cmd.Env = append(os.Environ(), "PROVIDERS_FILE="+d.regFile, "TOKEN_PARAMETER_PREFIX="+prefix)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		Results []struct {
			Provider, Status, Reason, Error string
			ExpiresAt                       string `json:"expires_at"`
		} `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return fmt.Errorf("refresher %s: %v\n%s", event, runErr, lastLines(stderr.String(), 10))
	}
	reader := ssm.NewFromConfig(d.aws)
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PROVIDER\tSTATUS\tEXPIRES AT\tTOKEN\tPARAMETER\tDETAIL")
	for _, r := range res.Results {
		param := prefix + "/" + r.Provider
		fp := "-"
		if out, err := reader.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)}); err == nil {
			if t, err := tokens.Parse([]byte(aws.ToString(out.Parameter.Value))); err == nil {
				fp = tokens.Fingerprint(t.AccessToken)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.Provider, r.Status, r.ExpiresAt, fp, param, r.Reason+r.Error)
	}
	tw.Flush()
	if runErr != nil {
		return fmt.Errorf("refresher %s: %w\n%s", event, runErr, lastLines(stderr.String(), 10))
	}
	return nil
}

// consume reads a token as a consumer Lambda does and calls a partner API with it.
func (d *demo) consume(ctx context.Context) error {
	d.step("A consumer reads the ecard token through pkg/tokens and calls the partner API")
	param := prefix + "/ecard"
	src := tokens.NewSource(ssm.NewFromConfig(d.aws), param)
	tok, err := src.TokenContext(ctx)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	fmt.Fprintf(d.out, "  read %s: token %s, expires %s\n", param, tokens.Fingerprint(tok.AccessToken), tok.Expiry.UTC().Format(time.RFC3339))

	issued := d.srv.Stats("ecard").Issued
	latest := issued[len(issued)-1]
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+latest {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"reports":3}`)
	}))
	defer api.Close()
	client := &http.Client{Transport: &tokens.Transport{Source: src}}
	resp, err := client.Get(api.URL + "/api/transaction/v1/reports")
	if err != nil {
		return fmt.Errorf("partner API call: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(d.out, "  GET %s/api/transaction/v1/reports -> %s %s\n", api.URL, resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the partner API refused the published token: %s", resp.Status)
	}
	fmt.Fprintln(d.out, "\nDemo complete: five dialects published, skipped when fresh, one rotated, read by a consumer.")
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
