package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPolicyGrantsExactlyTheNamedTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "providers.yaml")
	reg := "providers:\n" +
		"  - {name: ecard, token_url: 'https://a.example/t', secret_id: a}\n" +
		"  - {name: billing, token_url: 'https://b.example/t', secret_id: b, parameter: /t/partners/billing}\n"
	if err := os.WriteFile(file, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
	where := []string{"-region", "eu-west-1", "-account", "111122223333"}
	tests := []struct {
		name          string
		args          []string
		wantResources []string
		wantKey       string
		wantCondition map[string]map[string]string
	}{
		{
			name:          "default prefix, AWS managed key",
			args:          []string{"ecard", "billing", "ecard"},
			wantResources: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/token-refresher/tokens/billing", "arn:aws:ssm:eu-west-1:111122223333:parameter/token-refresher/tokens/ecard"},
			wantKey:       "arn:aws:kms:eu-west-1:111122223333:key/*",
			wantCondition: map[string]map[string]string{
				"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/aws/ssm"},
				"StringEquals":             {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"},
			},
		},
		{
			name:          "own prefix and key",
			args:          []string{"-token-prefix", "/t/", "-kms-key", key, "ecard"},
			wantResources: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/t/ecard"},
			wantKey:       key,
			wantCondition: map[string]map[string]string{"StringEquals": {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}},
		},
		{
			name:          "registry parameters",
			args:          []string{"-token-prefix", "/t", "-providers", file, "billing", "ecard"},
			wantResources: []string{"arn:aws:ssm:eu-west-1:111122223333:parameter/t/ecard", "arn:aws:ssm:eu-west-1:111122223333:parameter/t/partners/billing"},
			wantKey:       "arn:aws:kms:eu-west-1:111122223333:key/*",
			wantCondition: map[string]map[string]string{
				"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/aws/ssm"},
				"StringEquals":             {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"policy"}, where...), tt.args...)
			if code := run(t.Context(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitOK, stderr.String())
			}
			var got policyDoc
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("output is not a policy: %v\n%s", err, stdout.String())
			}
			if len(got.Statement) != 2 {
				t.Fatalf("got %d statements, want 2 (read, decrypt): %s", len(got.Statement), stdout.String())
			}
			read, decrypt := got.Statement[0], got.Statement[1]
			if !slices.Equal(read.Action, []string{"ssm:GetParameter"}) || read.Effect != "Allow" || read.Condition != nil {
				t.Errorf("got read statement %+v, want Allow ssm:GetParameter alone", read)
			}
			if !slices.Equal(read.Resource, tt.wantResources) {
				t.Errorf("got resources %q, want %q", read.Resource, tt.wantResources)
			}
			if !slices.Equal(decrypt.Action, []string{"kms:Decrypt"}) || !slices.Equal(decrypt.Resource, []string{tt.wantKey}) {
				t.Errorf("got decrypt statement %+v, want kms:Decrypt on %s", decrypt, tt.wantKey)
			}
			gotCond, _ := json.Marshal(decrypt.Condition)
			wantCond, _ := json.Marshal(tt.wantCondition)
			if !bytes.Equal(gotCond, wantCond) {
				t.Errorf("got decrypt condition %s, want %s", gotCond, wantCond)
			}
		})
	}
}

func TestPolicyRefusesWhatItCannotGrantExactly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(file, []byte("providers:\n  - {name: ecard, token_url: 'https://a.example/t', secret_id: a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	where := []string{"policy", "-region", "us-east-1", "-account", "123456789012"}
	tests := []struct {
		name string
		args []string
	}{
		{"no provider", nil},
		{"a wildcard", []string{"*"}},
		{"a path", []string{"ecard/../state"}},
		{"an upper-case name", []string{"Ecard"}},
		{"a name the registry lacks", []string{"-providers", file, "billing"}},
		{"a key that is no KMS ARN", []string{"-kms-key", "alias/tokens", "ecard"}},
		{"a wildcard function", []string{"-rotate", "token-refresher-*", "ecard"}},
		{"a qualified function ARN", []string{"-rotate", "arn:aws:lambda:us-east-1:123456789012:function:token-refresher-refresher:1", "ecard"}},
		{"a function ARN of another service", []string{"-rotate", "arn:aws:s3:::bucket", "ecard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append(where, tt.args...), &stdout, &stderr); code != exitUsage {
				t.Errorf("got exit %d, want %d", code, exitUsage)
			}
			if stdout.Len() != 0 {
				t.Errorf("got output %q, want none: a policy printed on error could be applied", stdout.String())
			}
			if stderr.Len() == 0 {
				t.Error("got no message on stderr, want the reason")
			}
		})
	}
}

func TestPolicyRotateGrantsInvokeOfTheRefresherOnly(t *testing.T) {
	const fnARN = "arn:aws:lambda:eu-west-1:111122223333:function:token-refresher-refresher"
	for _, fn := range []string{"token-refresher-refresher", fnARN} {
		t.Run(fn, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"policy", "-region", "eu-west-1", "-account", "111122223333", "-rotate", fn, "ecard"}
			if code := run(t.Context(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitOK, stderr.String())
			}
			var got policyDoc
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("output is not a policy: %v\n%s", err, stdout.String())
			}
			if len(got.Statement) != 3 {
				t.Fatalf("got %d statements, want 3 (read, decrypt, invoke): %s", len(got.Statement), stdout.String())
			}
			invoke := got.Statement[2]
			if invoke.Effect != "Allow" || !slices.Equal(invoke.Action, []string{"lambda:InvokeFunction"}) ||
				!slices.Equal(invoke.Resource, []string{fnARN}) || invoke.Condition != nil {
				t.Errorf("got invoke statement %+v, want Allow lambda:InvokeFunction on %s alone", invoke, fnARN)
			}
		})
	}
}
