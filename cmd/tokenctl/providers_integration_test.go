//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
)

// TestIntegrationProviders: list, put, get and rm against a registry bucket; a put
// with one invalid entry stores nothing.
func TestIntegrationProviders(t *testing.T) {
	cfg := awstest.Config(t)
	bucket := awstest.UniqueName("ctl-registry-")
	if _, err := catalog.NewClient(cfg).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_BUCKET", bucket)
	t.Setenv("SECRET_NAME_PREFIX", "")
	ctl := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"providers"}, args...), &out, &errOut); code != want {
			t.Fatalf("tokenctl providers %v: got exit %d (%s%s), want %d", args, code, out.String(), errOut.String(), want)
		}
		return out.String() + errOut.String()
	}
	entry := func(name string) string {
		return "  - {name: " + name + ", token_url: 'https://" + name + ".example/token', secret_id: token-refresher/" + name + "}\n"
	}

	if out := ctl(exitOK, "list"); !strings.Contains(out, "no providers") {
		t.Errorf("empty: got %q, want \"no providers\"", out)
	}
	out := ctl(exitOK, "put", writeFile(t, "providers:\n"+entry("one")+entry("two")))
	if !strings.Contains(out, "added one, two") {
		t.Errorf("put: got %q", out)
	}
	ctl(exitProblem, "put", writeFile(t, "providers:\n"+entry("three")+"  - {name: four, token_url: 'ftp://x', secret_id: token-refresher/four}\n"))
	out = ctl(exitOK, "list")
	if !strings.Contains(out, "2 providers") || !strings.Contains(out, "one.example/token") || strings.Contains(out, "three") {
		t.Errorf("list: got %q, want one and two only", out)
	}
	if out := ctl(exitOK, "get", "two"); !strings.Contains(out, "two.example") {
		t.Errorf("get: got %q", out)
	}
	ctl(exitProblem, "get", "three")
	out = ctl(exitOK, "rm", "one")
	if !strings.Contains(out, "stays until it expires") || !strings.Contains(out, "/token-refresher/tokens/one") {
		t.Errorf("rm: got %q", out)
	}
	ctl(exitProblem, "rm", "one")
	// -probe asks each provider for a real token first: "five" has no secret, so
	// the probe fails and nothing is stored.
	out = ctl(exitProblem, "put", "-probe", writeFile(t, "providers:\n"+entry("five")))
	if !strings.Contains(out, "nothing was stored") {
		t.Errorf("put -probe: got %q, want \"nothing was stored\"", out)
	}
	if out := ctl(exitOK, "list"); !strings.Contains(out, "1 provider ") || strings.Contains(out, "one.example") {
		t.Errorf("after rm: got %q", out)
	}

	// status reads the stack's registry from the same bucket: its one provider,
	// without a token yet, and "no providers" once that is removed too.
	status := func(want int) string {
		t.Helper()
		var out, errOut bytes.Buffer
		prefix := awstest.Parameters(t, cfg, "ctl-status-")
		args := []string{"status", "-token-prefix", "/token-refresher/tokens", "-state-prefix", prefix + "/state"}
		if code := run(context.Background(), args, &out, &errOut); code != want {
			t.Fatalf("tokenctl status: got exit %d (%s%s), want %d", code, out.String(), errOut.String(), want)
		}
		return out.String()
	}
	if out := status(exitProblem); !strings.Contains(out, "two") {
		t.Errorf("status: got %q, want the stack's provider two, failing without a token", out)
	}
	ctl(exitOK, "rm", "two")
	if out := status(exitOK); strings.TrimSpace(out) != "no providers" {
		t.Errorf("status of a stack with no providers: got %q, want \"no providers\"", out)
	}
}
