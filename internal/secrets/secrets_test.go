package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const arnPrefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"

// fakeSM holds secrets by name, each with a current and maybe a previous version.
type fakeSM struct {
	values     map[string][2]string // name -> {current, previous}
	getCalls   int
	batchCalls int
	batchSizes []int
	// perPage, when set, answers at most that many secrets per call, with a
	// NextToken for the rest; pageFails makes the calls for later pages fail.
	perPage   int
	pageFails bool
	// denied names secrets the caller may not read, as an IAM or KMS refusal.
	denied map[string]bool
}

func (f *fakeSM) version(name, stage string) (string, string, bool) {
	v, ok := f.values[name]
	if !ok {
		return "", "", false
	}
	if stage == StagePrevious {
		return v[1], "prev-" + name, v[1] != ""
	}
	return v[0], "cur-" + name, true
}

// resolve accepts a name, a full ARN or a partial ARN, as Secrets Manager does.
func resolve(id string) string {
	if n, ok := strings.CutPrefix(id, arnPrefix); ok {
		if i := len(n) - 7; i > 0 && n[i] == '-' {
			return n[:i]
		}
		return n
	}
	return id
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.getCalls++
	name := resolve(aws.ToString(in.SecretId))
	val, ver, ok := f.version(name, aws.ToString(in.VersionStage))
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{Name: aws.String(name), ARN: aws.String(arnPrefix + name + "-AbCdEf"),
		SecretString: aws.String(val), VersionId: aws.String(ver)}, nil
}

func (f *fakeSM) BatchGetSecretValue(_ context.Context, in *secretsmanager.BatchGetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	f.batchCalls++
	f.batchSizes = append(f.batchSizes, len(in.SecretIdList))
	if len(in.SecretIdList) > batchSize {
		return nil, fmt.Errorf("too many ids: %d", len(in.SecretIdList))
	}
	out := &secretsmanager.BatchGetSecretValueOutput{}
	ids := in.SecretIdList
	if f.perPage > 0 {
		start, _ := strconv.Atoi(aws.ToString(in.NextToken))
		if start > 0 && f.pageFails {
			return nil, errors.New("the next page failed")
		}
		ids = ids[start:min(start+f.perPage, len(ids))]
		if start+f.perPage < len(in.SecretIdList) {
			out.NextToken = aws.String(strconv.Itoa(start + f.perPage))
		}
	}
	for _, id := range ids {
		name := resolve(id)
		if f.denied[name] {
			out.Errors = append(out.Errors, types.APIErrorType{SecretId: aws.String(id), ErrorCode: aws.String("AccessDeniedException"),
				Message: aws.String("User is not authorized to perform: secretsmanager:GetSecretValue")})
			continue
		}
		val, ver, ok := f.version(name, StageCurrent)
		if !ok {
			out.Errors = append(out.Errors, types.APIErrorType{SecretId: aws.String(id), ErrorCode: aws.String("ResourceNotFoundException"), Message: aws.String("not found")})
			continue
		}
		out.SecretValues = append(out.SecretValues, types.SecretValueEntry{Name: aws.String(name), ARN: aws.String(arnPrefix + name + "-AbCdEf"),
			SecretString: aws.String(val), VersionId: aws.String(ver)})
	}
	return out, nil
}

func cred(id, secret string) string {
	return fmt.Sprintf(`{"client_id":%q,"client_secret":%q}`, id, secret)
}

func TestCurrentBatchesAndCaches(t *testing.T) {
	api := &fakeSM{values: map[string][2]string{}}
	var ids []string
	for i := range 45 {
		name := fmt.Sprintf("token-refresher/p%02d", i)
		api.values[name] = [2]string{cred("id", "secret"), ""}
		ids = append(ids, name)
	}
	ids[3] = arnPrefix + "token-refresher/p03-AbCdEf" // asked for by full ARN
	ids = append(ids, "token-refresher/missing")
	now := time.Now()
	at := WithClock(func() time.Time { return now })
	s := &Source{API: api, TTL: time.Minute}

	got, errs := s.Current(context.Background(), ids, at)
	if len(got) != 45 || len(errs) != 1 || !errors.Is(errs["token-refresher/missing"], ErrNotFound) {
		t.Fatalf("got %d secrets and errors %v, want 45 secrets and ErrNotFound for token-refresher/missing", len(got), errs)
	}
	if got[ids[3]].VersionID != "cur-token-refresher/p03" {
		t.Fatalf("ARN-named secret: got version %q, want %q", got[ids[3]].VersionID, "cur-token-refresher/p03")
	}
	if api.batchCalls != 3 || fmt.Sprint(api.batchSizes) != "[20 20 6]" {
		t.Fatalf("got %d batch calls of %v, want 3 of [20 20 6]", api.batchCalls, api.batchSizes)
	}

	// Warm: nothing is read again until the TTL passes or a secret is invalidated.
	s.Current(context.Background(), ids[:45], at)
	if api.batchCalls != 3 || api.getCalls != 0 {
		t.Fatalf("warm read: got %d batch and %d get calls, want 3 and 0", api.batchCalls, api.getCalls)
	}
	s.Invalidate(ids[0])
	s.Current(context.Background(), ids[:45], at)
	if api.getCalls != 1 {
		t.Fatalf("invalidated secret: got %d reads, want 1", api.getCalls)
	}
	now = now.Add(time.Minute)
	s.Current(context.Background(), ids[:45], at)
	if api.batchCalls != 6 {
		t.Fatalf("expired cache: got %d batch calls, want 6", api.batchCalls)
	}

	// Without a TTL of its own, a Source keeps a secret for 15 minutes.
	api.batchCalls = 0
	d := &Source{API: api}
	d.Current(context.Background(), ids[:20], at)
	now = now.Add(15*time.Minute - time.Nanosecond)
	d.Current(context.Background(), ids[:20], at)
	if api.batchCalls != 1 {
		t.Fatalf("default TTL: got %d batch calls just before 15 minutes, want 1", api.batchCalls)
	}
	now = now.Add(time.Nanosecond)
	d.Current(context.Background(), ids[:20], at)
	if api.batchCalls != 2 {
		t.Fatalf("default TTL: got %d batch calls at 15 minutes, want 2", api.batchCalls)
	}
}

func TestMalformedSecrets(t *testing.T) {
	tests := map[string]string{
		"not json":       "client_id=a&client_secret=hunter2",
		"empty key":      `{"client_id":"a","private_key":"","client_secret":"hunter2"}`,
		"empty cert":     `{"client_id":"a","certificate":"","client_secret":"hunter2"}`,
		"key number":     `{"client_id":"a","private_key":12345,"client_secret":"hunter2"}`,
		"empty secret":   `{"client_id":"a","client_secret":""}`,
		"no id":          `{"client_secret":"hunter2"}`,
		"secret number":  `{"client_id":"a","client_secret":12345}`,
		"array":          `["hunter2"]`,
		"empty":          "",
		"whitespace id":  `{"client_id":"","client_secret":"hunter2"}`,
		"truncated json": `{"client_id":"a","client_secret":"hunter2`,
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			api := &fakeSM{values: map[string][2]string{"s": {value, ""}}}
			_, err := (&Source{API: api}).Fresh(context.Background(), "s")
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q holds the secret, want it without", err)
			}
		})
	}
}

func TestPrevious(t *testing.T) {
	api := &fakeSM{values: map[string][2]string{"s": {cred("id", "new"), cred("id", "old")}, "t": {cred("id", "x"), ""}}}
	s := &Source{API: api}
	prev, err := s.Previous(context.Background(), "s")
	if err != nil || prev.ClientSecret != "old" || prev.VersionID != "prev-s" {
		t.Fatalf("got version %q (old secret: %v), error %v; want version %q, the old secret", prev.VersionID, prev.ClientSecret == "old", err, "prev-s")
	}
	if _, err := s.Previous(context.Background(), "t"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no previous version: got %v, want ErrNotFound", err)
	}
}

func TestSecretNeverFormatted(t *testing.T) {
	s := Secret{ClientID: "id", ClientSecret: "hunter2", VersionID: "v"}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), s.LogValue().String()} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("formatted secret %q holds the client secret, want it without", out)
		}
	}
}

// TestCurrentOneSecretNamedTwoWays: two providers naming one secret, one by name and
// one by ARN (full or partial), both get it from the same batch.
func TestCurrentOneSecretNamedTwoWays(t *testing.T) {
	for _, arn := range []string{arnPrefix + "token-refresher/shared-AbCdEf", arnPrefix + "token-refresher/shared"} {
		t.Run(arn, func(t *testing.T) {
			api := &fakeSM{values: map[string][2]string{
				"token-refresher/shared": {cred("id", "secret"), ""},
				"token-refresher/other":  {cred("id2", "secret2"), ""},
			}}
			ids := []string{"token-refresher/shared", arn, "token-refresher/other"}
			got, errs := (&Source{API: api}).Current(context.Background(), ids)
			if len(errs) != 0 || len(got) != 3 {
				t.Fatalf("got %d secrets and errors %v, want 3 and none", len(got), errs)
			}
			for _, id := range ids[:2] {
				if got[id].ClientID != "id" || got[id].VersionID != "cur-token-refresher/shared" {
					t.Errorf("%s: got client %q, version %q; want %q, %q", id, got[id].ClientID, got[id].VersionID, "id", "cur-token-refresher/shared")
				}
			}
			if api.batchCalls != 1 {
				t.Errorf("got %d batch calls, want 1", api.batchCalls)
			}
		})
	}
}

// TestCurrentFollowsNextToken: a batch answer that says there is more is followed
// to its end; when a later page fails, the secrets it would have held are read one
// by one. Either way every secret is read.
func TestCurrentFollowsNextToken(t *testing.T) {
	for _, tt := range []struct {
		name                     string
		pageFails                bool
		wantBatchCalls, wantGets int
	}{
		{"followed", false, 4, 0},
		{"a later page fails", true, 2, 15},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSM{values: map[string][2]string{}, perPage: 5, pageFails: tt.pageFails}
			var ids []string
			for i := range 20 {
				name := fmt.Sprintf("s%02d", i)
				f.values[name] = [2]string{cred("id-"+name, "secret-"+name)}
				ids = append(ids, name)
			}
			got, errs := (&Source{API: f}).Current(context.Background(), ids)
			if len(got) != 20 || len(errs) != 0 {
				t.Fatalf("got %d secrets and errors %v, want 20 and none", len(got), errs)
			}
			if f.batchCalls != tt.wantBatchCalls || f.getCalls != tt.wantGets {
				t.Errorf("got %d batch and %d single reads, want %d and %d", f.batchCalls, f.getCalls, tt.wantBatchCalls, tt.wantGets)
			}
		})
	}
}

// TestCurrentAccessDeniedIsNotNotFound: a secret the role may not read is reported
// by Secrets Manager's code, as the troubleshooting table names it, never as a
// missing secret.
func TestCurrentAccessDeniedIsNotNotFound(t *testing.T) {
	f := &fakeSM{values: map[string][2]string{"a": {cred("id", "s")}, "b": {cred("id", "s")}}, denied: map[string]bool{"b": true}}
	_, errs := (&Source{API: f}).Current(context.Background(), []string{"a", "b"})
	err := errs["b"]
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("got %v, want an error naming AccessDeniedException, not ErrNotFound", err)
	}
}

// TestKeyFields: private_key and certificate are read with the rest, from the
// current and from the previous version, and a secret of a client_id alone (a key
// held in KMS) is no malformed one; neither field is ever formatted.
func TestKeyFields(t *testing.T) {
	const (
		cur  = `{"client_id":"a","private_key":"-----BEGIN PRIVATE KEY-----\nNEW\n-----END PRIVATE KEY-----\n","certificate":"-----BEGIN CERTIFICATE-----\nC1\n-----END CERTIFICATE-----\n"}`
		prev = `{"client_id":"a","private_key":"-----BEGIN PRIVATE KEY-----\nOLD\n-----END PRIVATE KEY-----\n","certificate":"-----BEGIN CERTIFICATE-----\nC0\n-----END CERTIFICATE-----\n"}`
	)
	api := &fakeSM{values: map[string][2]string{"s": {cur, prev}, "kms": {`{"client_id":"b"}`, ""}}}
	s := &Source{API: api}
	got, err := s.Fresh(context.Background(), "s")
	if err != nil || !strings.Contains(got.PrivateKey, "NEW") || !strings.Contains(got.Certificate, "C1") {
		t.Fatalf("current: got key new %v, certificate C1 %v, error %v; want both", strings.Contains(got.PrivateKey, "NEW"), strings.Contains(got.Certificate, "C1"), err)
	}
	old, err := s.Previous(context.Background(), "s")
	if err != nil || !strings.Contains(old.PrivateKey, "OLD") || !strings.Contains(old.Certificate, "C0") {
		t.Fatalf("previous: got key old %v, certificate C0 %v, error %v; want both", strings.Contains(old.PrivateKey, "OLD"), strings.Contains(old.Certificate, "C0"), err)
	}
	if k, err := s.Fresh(context.Background(), "kms"); err != nil || k.ClientID != "b" {
		t.Fatalf("client_id alone: got %q, %v; want it read", k.ClientID, err)
	}
	for _, f := range []string{fmt.Sprint(got), fmt.Sprintf("%v %+v %#v", got, got, got)} {
		if strings.Contains(f, "NEW") {
			t.Errorf("formatted secret %q holds the private key", f)
		}
	}
}
