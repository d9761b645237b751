package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/token-refresher/token-refresher/internal/registry"
)

// policyDoc is an IAM policy document, in the field order AWS prints.
type policyDoc struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// policyTarget is where the stack runs and how it encrypts its tokens.
type policyTarget struct {
	partition, region, account string
	// kmsKey is the stack's KmsKeyArn; empty means the AWS managed key alias/aws/ssm.
	kmsKey string
	// rotate is the refresher function (name or ARN) the consumer may send
	// conditional rotations to; empty grants no invoke.
	rotate string
}

// consumerPolicy grants reading exactly the given token parameters and nothing
// else: ssm:GetParameter (what pkg/tokens, the SDKs' get-parameter calls and the
// Parameters and Secrets extension make) on each parameter's ARN, and kms:Decrypt only
// as SSM performs it for the caller, as the stack's own consumer policy does.
func consumerPolicy(t policyTarget, parameters []string) policyDoc {
	arns := make([]string, 0, len(parameters))
	for _, p := range parameters {
		// Parameter names start with '/': no '/' after "parameter".
		arns = append(arns, fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s", t.partition, t.region, t.account, p))
	}
	slices.Sort(arns)
	arns = slices.Compact(arns)
	viaSSM := map[string]string{"kms:ViaService": "ssm." + t.region + ".amazonaws.com"}
	decrypt := policyStatement{
		Sid: "DecryptTokensWithConfiguredKey", Effect: "Allow", Action: []string{"kms:Decrypt"},
		Resource: []string{t.kmsKey}, Condition: map[string]map[string]string{"StringEquals": viaSSM},
	}
	if t.kmsKey == "" {
		decrypt = policyStatement{
			Sid: "DecryptTokensWithAwsManagedSsmKey", Effect: "Allow", Action: []string{"kms:Decrypt"},
			Resource: []string{fmt.Sprintf("arn:%s:kms:%s:%s:key/*", t.partition, t.region, t.account)},
			Condition: map[string]map[string]string{
				"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/aws/ssm"},
				"StringEquals":             viaSSM,
			},
		}
	}
	doc := policyDoc{Version: "2012-10-17", Statement: []policyStatement{
		{Sid: "ReadTokenParameters", Effect: "Allow", Action: []string{"ssm:GetParameter"}, Resource: arns},
		decrypt,
	}}
	if t.rotate != "" {
		// The unqualified function only, as the stack's TokenRotationRequestersPolicy.
		fn := t.rotate
		if !strings.HasPrefix(fn, "arn:") {
			fn = fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", t.partition, t.region, t.account, fn)
		}
		doc.Statement = append(doc.Statement, policyStatement{
			Sid: "RequestConditionalRotation", Effect: "Allow", Action: []string{"lambda:InvokeFunction"}, Resource: []string{fn},
		})
	}
	return doc
}

// validFunction accepts what -rotate may name: a Lambda function name, or an
// unqualified function ARN (a qualifier would grant a version, not the function).
func validFunction(s string) bool {
	name := s
	if strings.HasPrefix(s, "arn:") {
		a, err := arn.Parse(s)
		if err != nil || a.Service != "lambda" {
			return false
		}
		rest, ok := strings.CutPrefix(a.Resource, "function:")
		if !ok || strings.Contains(rest, ":") {
			return false
		}
		name = rest
	}
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// policy prints the IAM policy that lets a consumer read the tokens of the named
// providers and no other, for least privilege per consumer: attach it instead of the
// stack's TokenReadersPolicy, which grants every token. With -rotate it also lets
// the consumer send conditional rotations to the refresher function.
func policy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	providersFile := fs.String("providers", "", "the deployment's registry `FILE`, for providers whose parameter is not PREFIX/NAME")
	tokenPrefix := fs.String("token-prefix", registry.DefaultParameterPrefix, "the deployment's TOKEN_PARAMETER_PREFIX")
	kmsKey := fs.String("kms-key", "", "the stack's KmsKeyArn, if it has one (default: the AWS managed key alias/aws/ssm)")
	region := fs.String("region", "", "the stack's region (default: the AWS SDK's configured region)")
	account := fs.String("account", "", "the stack's account ID (default: the caller's, from STS)")
	partition := fs.String("partition", "", "the stack's partition (default: the caller's, from STS, or aws with -account)")
	rotate := fs.String("rotate", "", "also allow sending conditional rotations to the refresher `FUNCTION` (name or ARN): lambda:InvokeFunction on it")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "tokenctl policy: name at least one provider")
		return exitUsage
	}
	if *kmsKey != "" {
		if a, err := arn.Parse(*kmsKey); err != nil || a.Service != "kms" {
			fmt.Fprintf(stderr, "tokenctl policy: -kms-key %q is not a KMS key ARN\n", *kmsKey)
			return exitUsage
		}
	}
	if *rotate != "" && !validFunction(*rotate) {
		fmt.Fprintf(stderr, "tokenctl policy: -rotate %q is not a Lambda function name or unqualified function ARN\n", *rotate)
		return exitUsage
	}
	prefix := strings.TrimRight(*tokenPrefix, "/")
	var reg *registry.Registry
	if *providersFile != "" {
		var err error
		if reg, err = registry.LoadFile(*providersFile, registry.Options{ParameterPrefix: prefix}); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	}
	var parameters []string
	for _, name := range fs.Args() {
		if !validProviderName(name) {
			fmt.Fprintf(stderr, "tokenctl policy: %q is not a provider name ([a-z0-9_-]+)\n", name)
			return exitUsage
		}
		if reg == nil {
			parameters = append(parameters, prefix+"/"+name)
			continue
		}
		p, ok := reg.Lookup(name)
		if !ok {
			fmt.Fprintf(stderr, "tokenctl policy: %s has no provider %q\n", *providersFile, name)
			return exitUsage
		}
		parameters = append(parameters, p.Parameter)
	}
	t := policyTarget{partition: *partition, region: *region, account: *account, kmsKey: *kmsKey, rotate: *rotate}
	if err := t.complete(ctx); err != nil {
		fmt.Fprintln(stderr, "tokenctl policy:", err)
		return exitUsage
	}
	out, err := json.MarshalIndent(consumerPolicy(t, parameters), "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "tokenctl policy:", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, string(out))
	return exitOK
}

// complete fills in what the flags left out from the AWS SDK's settings: the region
// from its configuration, the account and partition from the caller's identity. With
// every flag given it makes no call, so the policy can be printed offline.
func (t *policyTarget) complete(ctx context.Context) error {
	if t.region != "" && t.account != "" {
		if t.partition == "" {
			t.partition = "aws"
		}
		return nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if t.region == "" {
		if t.region = cfg.Region; t.region == "" {
			return fmt.Errorf("no region: give -region or set AWS_REGION")
		}
	}
	if t.account == "" {
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return fmt.Errorf("the caller's account (give -account to skip this): %w", err)
		}
		a, err := arn.Parse(*id.Arn)
		if err != nil {
			return fmt.Errorf("the caller's ARN: %w", err)
		}
		t.account = a.AccountID
		if t.partition == "" {
			t.partition = a.Partition
		}
	}
	if t.partition == "" {
		t.partition = "aws"
	}
	return nil
}

// validProviderName is the registry's rule for provider names: [a-z0-9_-]+.
func validProviderName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}
