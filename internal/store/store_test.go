package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// fakeSSM keeps parameters in memory, with every version, and pages
// GetParametersByPath like SSM. beforePut, when set, runs before each write, so a
// test can slip in another writer's.
type fakeSSM struct {
	params        map[string]string
	history       map[string][]string // every value written, version i+1 at index i
	tiers         map[string]types.ParameterTier
	puts          []*ssm.PutParameterInput
	getCalls      int
	historyCalls  int
	beforePut     func(name string)
	standardMax   int             // when set, the most Standard parameters there may be
	undecryptable map[string]bool // parameters under a key the caller may not use
	descs, keys   map[string]string
	describes     int        // DescribeParameters calls
	mu            sync.Mutex // Tokens reads concurrently
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{params: map[string]string{}, history: map[string][]string{}, tiers: map[string]types.ParameterTier{},
		descs: map[string]string{}, keys: map[string]string{}}
}

// DescribeParameters answers a Name Equals filter of up to 50 names, as SSM does,
// with each parameter's description, type and key; a SecureString written without
// a KeyId is under alias/aws/ssm.
func (f *fakeSSM) DescribeParameters(_ context.Context, in *ssm.DescribeParametersInput, _ ...func(*ssm.Options)) (*ssm.DescribeParametersOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	if len(in.ParameterFilters) != 1 || aws.ToString(in.ParameterFilters[0].Key) != "Name" || len(in.ParameterFilters[0].Values) > 50 {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "want one Name filter of at most 50 values"}
	}
	out := &ssm.DescribeParametersOutput{}
	for _, n := range in.ParameterFilters[0].Values {
		if _, ok := f.params[n]; !ok {
			continue
		}
		out.Parameters = append(out.Parameters, types.ParameterMetadata{Name: aws.String(n), Description: aws.String(f.descs[n]),
			Type: types.ParameterTypeSecureString, KeyId: aws.String(cmp.Or(f.keys[n], "alias/aws/ssm")), Version: int64(len(f.history[n]))})
	}
	return out, nil
}

// write stores a value as SSM would, returning its version.
func (f *fakeSSM) write(name, value string) int64 {
	f.params[name] = value
	f.history[name] = append(f.history[name], value)
	return int64(len(f.history[name]))
}

func (f *fakeSSM) GetParameterHistory(_ context.Context, in *ssm.GetParameterHistoryInput, _ ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error) {
	f.historyCalls++
	out := &ssm.GetParameterHistoryOutput{}
	for i, v := range f.history[aws.ToString(in.Name)] {
		out.Parameters = append(out.Parameters, types.ParameterHistory{Name: in.Name, Value: aws.String(v), Version: int64(i + 1)})
	}
	return out, nil
}

func (f *fakeSSM) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getCalls++
	if len(in.Names) > pageSize {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "names: at most 10"}
	}
	if aws.ToBool(in.WithDecryption) && slices.ContainsFunc(in.Names, func(n string) bool { return f.undecryptable[n] }) {
		return nil, errInvalidKeyID
	}
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		v, ok := f.params[n]
		if !ok {
			out.InvalidParameters = append(out.InvalidParameters, n)
			continue
		}
		out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(v), Version: int64(len(f.history[n]))})
	}
	return out, nil
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
		if aws.ToBool(in.WithDecryption) && f.undecryptable[n] {
			return nil, errInvalidKeyID
		}
		out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(f.params[n]),
			Version: int64(len(f.history[n]))})
	}
	if start+size < len(names) {
		out.NextToken = aws.String(strconv.Itoa(start + size))
	}
	return out, nil
}

func (f *fakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	name := aws.ToString(in.Name)
	if f.beforePut != nil {
		f.beforePut(name)
	}
	f.puts = append(f.puts, in)
	if f.tiers[name] == types.ParameterTierAdvanced && in.Tier == types.ParameterTierStandard {
		return nil, &smithy.GenericAPIError{Code: "ValidationException",
			Message: "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier."}
	}
	if in.Tier == types.ParameterTierStandard && len(aws.ToString(in.Value)) > 4096 {
		// SSM's documented limit of a Standard parameter's value: 4 KB.
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "Standard tier parameters support a maximum parameter value of 4096 characters."}
	}
	if f.standardMax > 0 && in.Tier == types.ParameterTierStandard && f.tiers[name] == "" {
		n := 0
		for _, t := range f.tiers {
			if t == types.ParameterTierStandard {
				n++
			}
		}
		if n >= f.standardMax {
			return nil, &types.ParameterLimitExceeded{Message: aws.String("You have exceeded the number of parameters for this AWS account.")}
		}
	}
	f.tiers[name] = in.Tier
	if in.Description != nil {
		f.descs[name] = aws.ToString(in.Description)
	}
	f.keys[name] = aws.ToString(in.KeyId)
	return &ssm.PutParameterOutput{Version: f.write(name, aws.ToString(in.Value)), Tier: in.Tier}, nil
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// errInvalidKeyID is SSM's answer to a read with decryption of a SecureString whose
// key the caller may not use.
var errInvalidKeyID = &smithy.GenericAPIError{Code: "InvalidKeyId", Message: "The query key ID isn't valid."}

// TestCurrentOneUndecryptableToken: after the KMS key changed, a token SSM cannot
// decrypt is that provider's problem only: every other token is read, the bad one
// is Malformed with its version, so its provider is due and its next token is
// published over it; both through Current and Tokens.
func TestCurrentOneUndecryptableToken(t *testing.T) {
	f := newFakeSSM()
	var names []string
	for i := range 25 {
		name := fmt.Sprintf("/tokens/p%02d", i)
		names = append(names, name)
		f.write(name, string(must(token(name, 10).Marshal())))
	}
	f.write("/tokens/p07", string(must(token("/tokens/p07", 10).Marshal())))
	f.undecryptable = map[string]bool{"/tokens/p07": true}
	s := &Store{API: f, Prefix: "/tokens"}
	for _, read := range []struct {
		name string
		read func() (Published, error)
	}{
		{"Current", func() (Published, error) { return s.Current(context.Background()) }},
		{"Tokens", func() (Published, error) { return s.Tokens(context.Background(), names) }},
	} {
		t.Run(read.name, func(t *testing.T) {
			got, err := read.read()
			if err != nil {
				t.Fatalf("got %v, want the other tokens read", err)
			}
			if len(got.Tokens) != 24 {
				t.Errorf("got %d tokens, want 24", len(got.Tokens))
			}
			merr, bad := got.Malformed["/tokens/p07"]
			if !bad || !strings.Contains(merr.Error(), "InvalidKeyId") {
				t.Errorf("got malformed %v, want /tokens/p07 cannot be decrypted (InvalidKeyId)", got.Malformed)
			}
			if v := got.Versions["/tokens/p07"]; v != 2 {
				t.Errorf("got version %d of the undecryptable token, want 2", v)
			}
		})
	}
	// Published over it, in one write: the version read says nobody wrote since.
	f.undecryptable = nil
	puts := len(f.puts)
	if _, err := s.Publish(context.Background(), Write{Parameter: "/tokens/p07", Token: token("/tokens/p07", 10), After: 2}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.puts) - puts; n != 1 {
		t.Errorf("got %d writes over the undecryptable token, want 1", n)
	}
}

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
				if _, err := s.Publish(context.Background(), Write{Parameter: fmt.Sprintf("/token-refresher/tokens/p%02d", i), Token: token("p", 10)}); err != nil {
					t.Fatal(err)
				}
			}
			api.write("/token-refresher/tokens/broken", "{not json")
			api.write("/elsewhere/x", "{}")
			got, err := s.Current(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Tokens) != n || len(got.Malformed) != 1 {
				t.Fatalf("got %d tokens, %d malformed; want %d, 1", len(got.Tokens), len(got.Malformed), n)
			}
			if want := (n + 1 + 9) / 10; api.getCalls != want {
				t.Fatalf("got %d calls for %d parameters, want %d", api.getCalls, n+1, want)
			}
			if err := got.Malformed["/token-refresher/tokens/broken"]; !errors.Is(err, tokens.ErrMalformed) || !strings.Contains(err.Error(), "broken") {
				t.Fatalf("got malformed error %v, want one wrapping tokens.ErrMalformed that names the parameter", err)
			}
		})
	}
}

func TestTokensReadsOnlyTheNamed(t *testing.T) {
	for _, n := range []int{0, 1, 10, 11, 25} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			api := newFakeSSM()
			s := &Store{API: api, Prefix: "/token-refresher/tokens"}
			var names []string
			for i := range 30 {
				name := fmt.Sprintf("/token-refresher/tokens/p%02d", i)
				api.write(name, string(must(token("p", 10).Marshal())))
				if i < n {
					names = append(names, name)
				}
			}
			names = append(names, "/token-refresher/tokens/never-written")
			api.write("/token-refresher/tokens/broken", "{not json")
			names = append(names, "/token-refresher/tokens/broken")
			got, err := s.Tokens(context.Background(), names)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Tokens) != n || len(got.Malformed) != 1 || len(got.Versions) != n+1 {
				t.Fatalf("got %d tokens, %d malformed, %d versions; want %d, 1, %d", len(got.Tokens), len(got.Malformed), len(got.Versions), n, n+1)
			}
			if want := (len(names) + 9) / 10; api.getCalls != want {
				t.Fatalf("got %d calls for %d names, want %d", api.getCalls, len(names), want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
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
			_, err := s.Publish(context.Background(), Write{Parameter: "/p/x", Token: token("x", tt.size)})
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
				t.Fatalf("put type %s, overwrite %v, tier %s; want %s, true, %s", in.Type, aws.ToBool(in.Overwrite), in.Tier, types.ParameterTypeSecureString, tt.wantTier)
			}
			if len(in.Tags) != 0 || aws.ToString(in.KeyId) != tt.kms {
				t.Fatalf("got tags %v, key %q; want no tags, key %q", in.Tags, aws.ToString(in.KeyId), tt.kms)
			}
			got, err := tokens.Parse([]byte(aws.ToString(in.Value)))
			if err != nil || got.AccessToken != strings.Repeat("a", tt.size) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("published %+v (error %v), want a %d-byte access token expiring at %s", got, err, tt.size, t0.Add(time.Hour))
			}
		})
	}
}

// TestPublishPastTheStandardLimit: when the account holds as many Standard
// parameters as SSM allows, a new token is written as Advanced instead of failing;
// existing Standard parameters stay Standard.
func TestPublishPastTheStandardLimit(t *testing.T) {
	api := newFakeSSM()
	api.standardMax = 2
	s := &Store{API: api, Prefix: "/p"}
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c", "a"} {
		if _, err := s.Publish(ctx, Write{Parameter: "/p/" + name, Token: token(name, 10), After: int64(len(api.history["/p/"+name]))}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if api.tiers["/p/a"] != types.ParameterTierStandard || api.tiers["/p/b"] != types.ParameterTierStandard ||
		api.tiers["/p/c"] != types.ParameterTierAdvanced {
		t.Fatalf("got tiers %v, want a and b %s, c %s", api.tiers, types.ParameterTierStandard, types.ParameterTierAdvanced)
	}
}

func TestPublishKeepsAdvancedTier(t *testing.T) {
	ctx := context.Background()
	// setup makes /p/x an Advanced parameter holding a 5,000-byte token and returns
	// the Store that publishes the next, small token, and the puts made so far.
	tests := []struct {
		name      string
		setup     func(api *fakeSSM) *Store
		wantPuts  int // PutParameter calls for the small token
		wantAgain int // and for one more after it, by the same Store
	}{
		{"the store that wrote it Advanced", func(api *fakeSSM) *Store {
			s := &Store{API: api, Prefix: "/p"}
			if _, err := s.Publish(ctx, Write{Parameter: "/p/x", Token: token("x", 5000)}); err != nil {
				t.Fatal(err)
			}
			return s
		}, 1, 1},
		{"a store that read the large token", func(api *fakeSSM) *Store {
			if _, err := (&Store{API: api, Prefix: "/p"}).Publish(ctx, Write{Parameter: "/p/x", Token: token("x", 5000)}); err != nil {
				t.Fatal(err)
			}
			s := &Store{API: api, Prefix: "/p"}
			if _, err := s.Current(ctx); err != nil {
				t.Fatal(err)
			}
			return s
		}, 1, 1},
		// A new function instance knows nothing yet: SSM's refusal tells it once.
		{"a store that knows nothing", func(api *fakeSSM) *Store {
			api.tiers["/p/x"] = types.ParameterTierAdvanced
			api.write("/p/x", "{}")
			return &Store{API: api, Prefix: "/p"}
		}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeSSM()
			s := tt.setup(api)
			for i, want := range []int{tt.wantPuts, tt.wantAgain} {
				before := len(api.puts)
				after := int64(len(api.history["/p/x"]))
				if _, err := s.Publish(ctx, Write{Parameter: "/p/x", Token: token("x", 10+i), After: after}); err != nil {
					t.Fatal(err)
				}
				if got := len(api.puts) - before; got != want || api.puts[len(api.puts)-1].Tier != types.ParameterTierAdvanced {
					t.Errorf("write %d: got %d PutParameter calls, last tier %s; want %d, Advanced", i+1, got, api.puts[len(api.puts)-1].Tier, want)
				}
			}
		})
	}
}

// TestPublishErrorLeavesOutTheValue: SSM's message for a refused write may quote
// the request's value; the error the store returns keeps the code only.
func TestPublishErrorLeavesOutTheValue(t *testing.T) {
	api := &quotingSSM{fakeSSM: newFakeSSM()}
	s := &Store{API: api, Prefix: "/p"}
	tok := token("x", 0)
	tok.AccessToken = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"
	_, err := s.Publish(context.Background(), Write{Parameter: "/p/x", Token: tok})
	if err == nil {
		t.Fatal("got no error, want SSM's refusal")
	}
	for _, leak := range []string{tok.AccessToken, "c2VjcmV0LXRva2Vu", "eyJhbGci"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("got error %q, which quotes %q", err, leak)
		}
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || !strings.Contains(err.Error(), "/p/x") {
		t.Errorf("got error %q, want one with the code ValidationException and the parameter's name", err)
	}
}

// quotingSSM refuses every write with a message quoting the value, as SSM's
// validation errors may.
type quotingSSM struct{ *fakeSSM }

func (q *quotingSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return nil, &smithy.OperationError{ServiceID: "SSM", OperationName: "PutParameter", Err: &smithy.GenericAPIError{
		Code: "ValidationException", Message: "1 validation error detected: Value '" + aws.ToString(in.Value) + "' at 'value' failed to satisfy constraint"}}
}

// live returns a valid token of provider p named access that expires in d.
func live(p, access string, d time.Duration) tokens.Token {
	now := time.Now().UTC().Truncate(time.Second)
	return tokens.Token{AccessToken: access, TokenType: "Bearer", Provider: p, IssuedAt: now, ExpiresAt: now.Add(d)}
}

// TestPublishOverlappingWriters: two runs that read the same version and overlap
// never leave the shorter of their two valid tokens published, whichever writes
// last; a writer that overlapped nobody reads no history.
func TestPublishOverlappingWriters(t *testing.T) {
	const name = "/p/x"
	long, short := live("x", "long", 2*time.Hour), live("x", "short", time.Hour)
	tests := []struct {
		name        string
		mine, other tokens.Token // other is written by another run just before mine
		want        string
	}{
		{"the other run's token lives longer", short, long, "long"},
		{"mine lives longer", long, short, "long"},
		{"the other run's token is another provider's", short, live("y", "other-provider", 3*time.Hour), "short"},
		{"the other run's token is expired", short, tokens.Token{AccessToken: "old", Provider: "x", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, "short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeSSM()
			api.write(name, `{"access_token":"before","expires_at":"2026-01-01T00:00:00Z","provider":"x"}`) // version 1, read by both
			s := &Store{API: api, Prefix: "/p"}
			once := false
			api.beforePut = func(string) {
				if !once {
					once = true
					v, _ := tt.other.Marshal()
					api.write(name, string(v))
				}
			}
			got, err := s.Publish(context.Background(), Write{Parameter: name, Token: tt.mine, After: 1})
			if err != nil {
				t.Fatal(err)
			}
			now, _ := tokens.Parse([]byte(api.params[name]))
			if now.AccessToken != tt.want || got.AccessToken != tt.want {
				t.Fatalf("published %q, Publish returned %q, want %q", now.AccessToken, got.AccessToken, tt.want)
			}
		})
	}
	t.Run("no overlap, no history read", func(t *testing.T) {
		api := newFakeSSM()
		s := &Store{API: api, Prefix: "/p"}
		if _, err := s.Publish(context.Background(), Write{Parameter: name, Token: short}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Publish(context.Background(), Write{Parameter: name, Token: long, After: 1}); err != nil {
			t.Fatal(err)
		}
		if api.historyCalls != 0 || len(api.puts) != 2 {
			t.Fatalf("got %d history reads and %d writes, want 0 and 2", api.historyCalls, len(api.puts))
		}
	})
}

// TestDescription: a token parameter's description carries the token's Info and
// nothing of the token but its fingerprint.
func TestDescription(t *testing.T) {
	tok := live("ecard", "sekrit-token-value", time.Hour)
	tok.RefusedSecretVersion = "v2"
	due := tok.ExpiresAt.Add(-15 * time.Minute)
	desc := describe(tok, func(tokens.Token) time.Time { return due })
	if strings.Contains(desc, "sekrit") || len(desc) > 1024 {
		t.Fatalf("description %q: want at most 1024 bytes and no part of the token", desc)
	}
	info, ok := parseInfo(desc)
	want := Info{Provider: "ecard", IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt, RefreshAt: due,
		Fingerprint: tokens.Fingerprint(tok.AccessToken), PreviousSecret: true,
		SecretVersion: tok.SecretVersion, RefusedSecretVersion: "v2", Complete: true}
	if !ok || info != want {
		t.Fatalf("parseInfo(%q) = %+v, %v; want %+v", desc, info, ok, want)
	}
	for _, other := range []string{"", "OAuth access token for ecard, published by token-refresher", "token-refresher: provider=x"} {
		if _, ok := parseInfo(other); ok {
			t.Errorf("parseInfo(%q): got ok, want not ok", other)
		}
	}
}

// TestMetadata: the decision's metadata of named parameters is read fifty to a
// DescribeParameters call and decrypts nothing; it stands for the token only when
// the description is complete and the key is the store's: a description an older
// version wrote, none, or a token under another key are marked incomplete, and a
// parameter not found has no entry.
func TestMetadata(t *testing.T) {
	api := newFakeSSM()
	s := &Store{API: api, Prefix: "/tokens"}
	var names []string
	for i := range 60 {
		name := fmt.Sprintf("/tokens/p%02d", i)
		names = append(names, name)
		tok := live(fmt.Sprintf("p%02d", i), fmt.Sprintf("tok-%d", i), time.Hour)
		tok.SecretVersion = "v1"
		if _, err := s.Publish(context.Background(), Write{Parameter: name, Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	old := live("p00", "tok-0", time.Hour)
	api.descs["/tokens/p00"] = fmt.Sprintf("token-refresher: provider=p00 issued_at=%s expires_at=%s fingerprint=%s",
		old.IssuedAt.Format(time.RFC3339), old.ExpiresAt.Format(time.RFC3339), tokens.Fingerprint(old.AccessToken)) // before secret versions
	api.descs["/tokens/p01"] = ""
	api.keys["/tokens/p02"] = "alias/retired"
	api.getCalls = 0
	infos, err := s.Metadata(context.Background(), append(names, "/tokens/none"))
	if err != nil {
		t.Fatal(err)
	}
	if api.describes != 2 || api.getCalls != 0 {
		t.Errorf("got %d DescribeParameters and %d reads of values for 61 names, want 2 and 0", api.describes, api.getCalls)
	}
	if _, ok := infos["/tokens/none"]; ok || len(infos) != 60 {
		t.Errorf("got %d entries (none: %v), want 60, none for a parameter not found", len(infos), ok)
	}
	for _, name := range names {
		info := infos[name]
		incomplete := name == "/tokens/p00" || name == "/tokens/p01" || name == "/tokens/p02"
		if info.Complete == incomplete || info.Version != 1 {
			t.Errorf("%s: got complete %v, version %d; want %v, 1", name, info.Complete, info.Version, !incomplete)
		}
		if info.Complete && (info.SecretVersion != "v1" || info.ExpiresAt.IsZero()) {
			t.Errorf("%s: got %+v, want secret version v1 and an expiry", name, info)
		}
	}
}
