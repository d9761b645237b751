//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/localaws"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// TestIntegrationRegistryFromS3 runs the function as a stack wires it, reading its
// registry from S3: a stack with no registry is healthy; a provider stored with
// the registry API gets its token at the next run, no redeploy; an idle run costs
// the registry check and the run record, two calls; a removed provider is no
// longer refreshed; a registry broken by hand fails the run, with the last good
// registry still refreshed as due.
func TestIntegrationRegistryFromS3(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	srv := oauthtest.NewServer()
	defer srv.Close()
	id := awstest.UniqueName("s3reg-")
	sm := secretsmanager.NewFromConfig(cfg)
	entries := map[string]string{}
	for _, name := range []string{"alpha", "beta", "gamma"} {
		u := srv.Add(oauthtest.Provider{Name: name, Dialect: oauthtest.Cardlytics, ClientID: "id-" + name, ClientSecret: "secret " + name})
		if _, err := localaws.PutSecret(ctx, sm, id+"/"+name, "id-"+name, "secret "+name); err != nil {
			t.Fatal(err)
		}
		entries[name] = registry.EntryYAML(name, id+"/"+name, oauthtest.Cardlytics.Endpoint(u))
	}
	fileOf := func(names ...string) []byte {
		var b strings.Builder
		b.WriteString("providers:\n")
		for _, n := range names {
			b.WriteString(entries[n])
		}
		return []byte(b.String())
	}

	api := catalog.NewClient(cfg)
	bucket := id
	if _, err := api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	st := &catalog.Store{API: api, Bucket: bucket, Key: catalog.DefaultKey, Options: registry.Options{ParameterPrefix: "/" + id + "/tokens"}}

	vars := map[string]string{"REGISTRY_BUCKET": bucket, "TOKEN_PARAMETER_PREFIX": "/" + id + "/tokens", "STATE_PARAMETER_PREFIX": "/" + id + "/state"}
	e, err := loadEnv(func(k string) string { return vars[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls localaws.Calls
	c := cfg.Copy()
	c.APIOptions = append(c.APIOptions, calls.Middleware)
	var logs bytes.Buffer
	fn := newFunction(c, e, slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard)
	scheduled := json.RawMessage(`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
	run := func() (refresher.Result, error) {
		calls.Reset()
		return fn.Handle(ctx, scheduled)
	}
	providersOf := func(res refresher.Result, status refresher.Status) []string {
		var out []string
		for _, o := range res.Results {
			if o.Status == status {
				out = append(out, o.Provider)
			}
		}
		slices.Sort(out)
		return out
	}

	res, err := run()
	if err != nil || len(res.Results) != 0 || !strings.Contains(logs.String(), "no providers configured") {
		t.Fatalf("no registry: got %+v, %v; want a successful empty run", res, err)
	}

	if _, err := st.Put(ctx, fileOf("alpha", "beta")); err != nil {
		t.Fatal(err)
	}
	res, err = run()
	if got := providersOf(res, refresher.StatusRefreshed); err != nil || !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("after put: got refreshed %v, %v; want alpha, beta", got, err)
	}

	res, err = run()
	if err != nil || !res.Idle {
		t.Fatalf("got %+v, %v; want an idle run", res, err)
	}
	if calls.Total() != 2 || calls.Count("S3.GetObject") != 1 || calls.Count("SSM.GetParameter") != 1 {
		t.Errorf("an idle run made %d AWS calls (%d S3.GetObject, %d SSM.GetParameter), want 2: one of each",
			calls.Total(), calls.Count("S3.GetObject"), calls.Count("SSM.GetParameter"))
	}

	if _, err := st.Put(ctx, fileOf("gamma")); err != nil {
		t.Fatal(err)
	}
	res, err = run()
	if got := providersOf(res, refresher.StatusRefreshed); err != nil || !slices.Equal(got, []string{"gamma"}) {
		t.Fatalf("after adding gamma: got refreshed %v, %v; want gamma", got, err)
	}

	if _, err := st.Remove(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	res, err = fn.Handle(ctx, json.RawMessage(`{"action":"refresh"}`))
	if got := providersOf(res, refresher.StatusSkipped); err != nil || !slices.Equal(got, []string{"beta", "gamma"}) {
		t.Fatalf("after rm alpha: got skipped %v (results %+v), %v; want beta, gamma and no alpha", got, res.Results, err)
	}

	// An entry broken by hand: not the registry API, so nothing checked it. That
	// provider fails with its reason; the others run.
	broken := append(fileOf("beta", "gamma"), "    colour: blue\n"...)
	if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(catalog.DefaultKey),
		Body: bytes.NewReader(broken)}); err != nil {
		t.Fatal(err)
	}
	res, err = fn.Handle(ctx, json.RawMessage(`{"action":"refresh"}`))
	if err == nil || errors.Is(err, catalog.ErrUnreadable) {
		t.Errorf("an entry broken by hand: got error %v, want the run failed for that entry alone", err)
	}
	if got := providersOf(res, refresher.StatusSkipped); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("an entry broken by hand: got skipped %v, want beta", got)
	}
	if got := providersOf(res, refresher.StatusFailed); !slices.Equal(got, []string{"gamma"}) {
		t.Errorf("an entry broken by hand: got failed %v, want gamma", got)
	}

	// A file broken as a whole: the last registry read stays in use.
	if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(catalog.DefaultKey),
		Body: bytes.NewReader(append([]byte("colour: blue\n"), fileOf("beta")...))}); err != nil {
		t.Fatal(err)
	}
	res, err = fn.Handle(ctx, json.RawMessage(`{"action":"refresh"}`))
	if !errors.Is(err, catalog.ErrUnreadable) {
		t.Errorf("broken registry: got error %v, want ErrUnreadable", err)
	}
	if got := providersOf(res, refresher.StatusSkipped); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("broken registry: got skipped %v, want the last registry read's beta (gamma still failing)", got)
	}
}
