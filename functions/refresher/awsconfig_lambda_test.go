//go:build lambda.norpc

package main

import (
	"context"
	"testing"
)

// TestEnvAWSConfig: the build for Lambda takes region, credentials and endpoint
// from the variables Lambda (or LocalStack's executor) sets, and refuses to start
// without them.
func TestEnvAWSConfig(t *testing.T) {
	vars := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET",
		"AWS_SESSION_TOKEN": "TOKEN", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
	cfg, err := envAWSConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "SECRET" || creds.SessionToken != "TOKEN" {
		t.Fatalf("credentials %+v, %v", creds, err)
	}
	if cfg.Region != "eu-west-1" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != "http://127.0.0.1:4566" {
		t.Fatalf("config %+v", cfg)
	}
	delete(vars, "AWS_REGION")
	vars["AWS_DEFAULT_REGION"] = "us-east-2"
	if cfg, err := envAWSConfig(func(k string) string { return vars[k] }); err != nil || cfg.Region != "us-east-2" || cfg.BaseEndpoint == nil {
		t.Fatalf("AWS_DEFAULT_REGION: %+v %v", cfg, err)
	}
	for _, missing := range []string{"AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		saved := vars[missing]
		delete(vars, missing)
		if _, err := envAWSConfig(func(k string) string { return vars[k] }); err == nil {
			t.Errorf("started without %s", missing)
		}
		vars[missing] = saved
	}
}
