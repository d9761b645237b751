package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fakeSSM keeps parameters in memory and pages GetParametersByPath like SSM.
type fakeSSM struct {
	params   map[string]string
	tiers    map[string]types.ParameterTier
	puts     []*ssm.PutParameterInput
	getCalls int
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{params: map[string]string{}, tiers: map[string]types.ParameterTier{}}
}

func (f *fakeSSM) GetParametersByPath(_ context.Context, in *ssm.GetParametersByPathInput, _ ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	f.getCalls++
	var names []string
	for n := range f.params {
		if strings.HasPrefix(n, aws.ToString(in.Path)+"/") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	size := int(aws.ToInt32(in.MaxResults))
	out := &ssm.GetParametersByPathOutput{}
	for _, n := range names[start:min(start+size, len(names))] {
		out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(f.params[n])})
	}
	if start+size < len(names) {
		out.NextToken = aws.String(strconv.Itoa(start + size))
	}
	return out, nil
}

func (f *fakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	f.puts = append(f.puts, in)
	name := aws.ToString(in.Name)
	if f.tiers[name] == types.ParameterTierAdvanced && in.Tier == types.ParameterTierStandard {
		return nil, &smithy.GenericAPIError{Code: "ValidationException",
			Message: "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier."}
	}
	f.params[name] = aws.ToString(in.Value)
	f.tiers[name] = in.Tier
	return &ssm.PutParameterOutput{}, nil
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func token(name string, size int) tokens.Token {
	return tokens.Token{AccessToken: strings.Repeat("a", size), TokenType: "Bearer", Provider: name,
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func TestCurrentReadsTenPerCall(t *testing.T) {
	for _, n := range []int{0, 1, 10, 11, 25} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			api := newFakeSSM()
			s := &Store{API: api, Prefix: "/token-refresher/tokens"}
			for i := range n {
				if err := s.Publish(context.Background(), fmt.Sprintf("/token-refresher/tokens/p%02d", i), token("p", 10)); err != nil {
					t.Fatal(err)
				}
			}
			api.params["/token-refresher/tokens/broken"] = "{not json"
			api.params["/elsewhere/x"] = "{}"
			got, err := s.Current(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Tokens) != n || len(got.Malformed) != 1 {
				t.Fatalf("%d tokens, %d malformed", len(got.Tokens), len(got.Malformed))
			}
			if want := (n + 1 + 9) / 10; api.getCalls != want {
				t.Fatalf("%d calls for %d parameters", api.getCalls, n+1)
			}
			if err := got.Malformed["/token-refresher/tokens/broken"]; !errors.Is(err, tokens.ErrMalformed) || !strings.Contains(err.Error(), "broken") {
				t.Fatalf("malformed error %v", err)
			}
		})
	}
}

func TestPublish(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		kms      string
		wantTier types.ParameterTier
		wantErr  error
	}{
		{"small is standard", 100, "", types.ParameterTierStandard, nil},
		{"custom key", 100, "alias/tokens", types.ParameterTierStandard, nil},
		{"over 4 KB is advanced", 5000, "", types.ParameterTierAdvanced, nil},
		{"over 8 KB is refused", 8200, "", "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeSSM()
			s := &Store{API: api, Prefix: "/p", KMSKeyID: tt.kms}
			err := s.Publish(context.Background(), "/p/x", token("x", tt.size))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if len(api.puts) != 0 {
					t.Fatal("wrote a value SSM cannot hold")
				}
				return
			}
			in := api.puts[0]
			if in.Type != types.ParameterTypeSecureString || !aws.ToBool(in.Overwrite) || in.Tier != tt.wantTier {
				t.Fatalf("put %+v", in)
			}
			if len(in.Tags) != 0 || aws.ToString(in.KeyId) != tt.kms {
				t.Fatalf("tags %v, key %q", in.Tags, aws.ToString(in.KeyId))
			}
			got, err := tokens.Parse([]byte(aws.ToString(in.Value)))
			if err != nil || got.AccessToken != strings.Repeat("a", tt.size) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("published %+v, %v", got, err)
			}
		})
	}
}

func TestPublishKeepsAdvancedTier(t *testing.T) {
	api := newFakeSSM()
	s := &Store{API: api, Prefix: "/p"}
	ctx := context.Background()
	if err := s.Publish(ctx, "/p/x", token("x", 5000)); err != nil {
		t.Fatal(err)
	}
	// A small token for a parameter SSM already holds as Advanced.
	if err := s.Publish(ctx, "/p/x", token("x", 10)); err != nil {
		t.Fatal(err)
	}
	if n := len(api.puts); n != 3 || api.puts[2].Tier != types.ParameterTierAdvanced {
		t.Fatalf("%d puts, last tier %s", n, api.puts[n-1].Tier)
	}
}
