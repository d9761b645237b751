package state

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// fakeSSM keeps the latest value of each parameter and its tier. With
// noStandardLeft, a new Standard parameter is refused as SSM refuses one past the
// account's 10,000; quote makes every write fail with a message quoting the value.
type fakeSSM struct {
	API            // calls a test does not expect panic
	params         map[string]string
	tiers          map[string]types.ParameterTier
	puts           []types.ParameterTier
	noStandardLeft bool
	quote          bool
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{params: map[string]string{}, tiers: map[string]types.ParameterTier{}}
}

func (f *fakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	name := aws.ToString(in.Name)
	f.puts = append(f.puts, in.Tier)
	switch {
	case f.quote:
		return nil, &smithy.OperationError{ServiceID: "SSM", OperationName: "PutParameter", Err: &smithy.GenericAPIError{
			Code: "ValidationException", Message: "Value '" + aws.ToString(in.Value) + "' failed to satisfy constraint"}}
	case f.tiers[name] == types.ParameterTierAdvanced && in.Tier == types.ParameterTierStandard:
		return nil, &smithy.GenericAPIError{Code: "ValidationException",
			Message: "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier."}
	case f.noStandardLeft && f.tiers[name] == "" && in.Tier == types.ParameterTierStandard:
		return nil, &types.ParameterLimitExceeded{Message: aws.String("You have exceeded the number of parameters for this AWS account.")}
	}
	f.params[name], f.tiers[name] = aws.ToString(in.Value), in.Tier
	return &ssm.PutParameterOutput{Version: 1, Tier: in.Tier}, nil
}

func (f *fakeSSM) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		if v, ok := f.params[n]; ok {
			out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(v)})
		}
	}
	return out, nil
}

func (f *fakeSSM) GetParametersByPath(_ context.Context, in *ssm.GetParametersByPathInput, _ ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	out := &ssm.GetParametersByPathOutput{}
	for n, v := range f.params {
		if strings.HasPrefix(n, aws.ToString(in.Path)+"/") {
			out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(v)})
		}
	}
	return out, nil
}

// TestPutHealthTiers: a record goes Advanced when SSM has no Standard parameter
// left, and one already Advanced is written Advanced in one call from then on.
func TestPutHealthTiers(t *testing.T) {
	ctx := context.Background()
	h := Health{Provider: "a", State: Failing, Since: time.Now()}
	tests := []struct {
		name  string
		setup func(f *fakeSSM)
		want  [][]types.ParameterTier // tiers sent by each of two writes
	}{
		{"no Standard parameter left", func(f *fakeSSM) { f.noStandardLeft = true },
			[][]types.ParameterTier{{"Standard", "Advanced"}, {"Advanced"}}},
		{"already Advanced", func(f *fakeSSM) { f.tiers["/p/health/a"] = types.ParameterTierAdvanced },
			[][]types.ParameterTier{{"Standard", "Advanced"}, {"Advanced"}}},
		{"Standard", func(*fakeSSM) {}, [][]types.ParameterTier{{"Standard"}, {"Standard"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSSM()
			tt.setup(f)
			s := &Store{API: f, Prefix: "/p"}
			for i, want := range tt.want {
				f.puts = nil
				if err := s.PutHealth(ctx, h); err != nil {
					t.Fatalf("write %d: %v", i+1, err)
				}
				if strings.Join(tierNames(f.puts), ",") != strings.Join(tierNames(want), ",") {
					t.Errorf("write %d: got tiers %v, want %v", i+1, f.puts, want)
				}
			}
		})
	}
}

func tierNames(ts []types.ParameterTier) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// TestPutErrorLeavesOutTheValue: SSM's message may quote the record written; the
// error keeps the code only.
func TestPutErrorLeavesOutTheValue(t *testing.T) {
	f := newFakeSSM()
	f.quote = true
	s := &Store{API: f, Prefix: "/p"}
	err := s.PutHealth(context.Background(), Health{Provider: "a", State: Failing, LastError: "quoted-record-text"})
	if err == nil || strings.Contains(err.Error(), "quoted-record-text") || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("got %v, want an error naming ValidationException and not quoting the record", err)
	}
}

// TestHealthIgnoresAnotherProvidersRecord: a record whose provider is not the one
// its parameter is named for stands for nobody.
func TestHealthIgnoresAnotherProvidersRecord(t *testing.T) {
	f := newFakeSSM()
	for name, provider := range map[string]string{"/p/health/a": "a", "/p/health/b": "c", "/p/health/x": "a/../b"} {
		b, _ := json.Marshal(Health{Provider: provider, State: Failing})
		f.params[name] = string(b)
	}
	s := &Store{API: f, Prefix: "/p"}
	some, err := s.Health(context.Background(), []string{"a", "b", "x"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.AllHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]map[string]Health{"Health": some, "AllHealth": all} {
		if len(got) != 1 || got["a"].Provider != "a" {
			t.Errorf("%s: got %v, want only provider a's record", what, got)
		}
	}
}
