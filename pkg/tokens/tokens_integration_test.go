//go:build integration

package tokens_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestIntegrationSourceAgainstSSM reads published tokens through the real SSM client, so the
// SecureString round trip, WithDecryption and the SDK's error types are checked
// against the emulator rather than against the fake's idea of them.
func TestIntegrationSourceAgainstSSM(t *testing.T) {
	cfg := emulatorConfig(t)
	client := ssm.NewFromConfig(cfg)
	ctx := t.Context()
	name := uniqueName("/token-refresher-test/tokens/consumer-")
	t.Cleanup(func() {
		_, _ = client.DeleteParameter(context.WithoutCancel(ctx), &ssm.DeleteParameterInput{Name: &name})
	})

	put := func(value string) {
		t.Helper()
		overwrite := true
		_, err := client.PutParameter(ctx, &ssm.PutParameterInput{
			Name: &name, Value: &value, Type: types.ParameterTypeSecureString, Overwrite: &overwrite,
		})
		if err != nil {
			t.Fatalf("PutParameter: %v", err)
		}
	}
	publish := func(tok tokens.Token) {
		t.Helper()
		b, err := tok.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		put(string(b))
	}
	now := time.Now().UTC().Truncate(time.Second)

	src := tokens.NewSource(client, name)

	t.Run("missing parameter", func(t *testing.T) {
		_, err := src.TokenContext(ctx)
		var nf *types.ParameterNotFound
		if !errors.As(err, &nf) {
			t.Fatalf("error %v: want *types.ParameterNotFound through the wrap", err)
		}
	})

	first := tokens.Token{
		AccessToken: "integration-token-1", TokenType: "Bearer", Scope: "read:reports",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), Provider: "ecard",
	}
	publish(first)

	t.Run("round trip", func(t *testing.T) {
		got, err := src.TokenContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken != first.AccessToken || got.TokenType != "Bearer" || !got.Expiry.Equal(first.ExpiresAt) {
			t.Errorf("got %q %q %v, want %q Bearer %v", got.AccessToken, got.TokenType, got.Expiry, first.AccessToken, first.ExpiresAt)
		}
	})

	t.Run("newer token after Invalidate", func(t *testing.T) {
		second := first
		second.AccessToken, second.IssuedAt, second.ExpiresAt = "integration-token-2", now.Add(time.Minute), now.Add(2*time.Hour)
		publish(second)

		if got, err := src.TokenContext(ctx); err != nil || got.AccessToken != first.AccessToken {
			t.Fatalf("before Invalidate got %v, %v; want the cached first token", got, err)
		}
		src.Invalidate()
		got, err := src.TokenContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken != second.AccessToken || !got.Expiry.Equal(second.ExpiresAt) {
			t.Errorf("after Invalidate got %q %v, want %q %v", got.AccessToken, got.Expiry, second.AccessToken, second.ExpiresAt)
		}
	})

	t.Run("malformed value", func(t *testing.T) {
		const value = `{"access_token":"integration-secret-value"}`
		put(value)
		fresh := tokens.NewSource(client, name) // nothing cached to fall back on
		_, err := fresh.TokenContext(ctx)
		if !errors.Is(err, tokens.ErrMalformed) {
			t.Fatalf("error %v: want ErrMalformed", err)
		}
		if !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "integration-secret-value") {
			t.Errorf("got err %q, want one naming %s without its value", err, name)
		}
	})
}

// countingReader counts the GetParameter calls that reach SSM.
type countingReader struct {
	tokens.ParameterReader
	mu sync.Mutex
	n  int
}

func (c *countingReader) GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.ParameterReader.GetParameter(ctx, in, optFns...)
}

func (c *countingReader) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestIntegrationTransportRefusedTokenAgainstSSM sends 100 concurrent requests that
// the partner refuses with the published token, through the real SSM client: without
// a rotation they cost two GetParameter calls in all; with one, a single conditional
// rotation whose successor (published to SSM by the stand-in for the refresher) every
// request is retried with.
func TestIntegrationTransportRefusedTokenAgainstSSM(t *testing.T) {
	const requests = 100
	cfg := emulatorConfig(t)
	client := ssm.NewFromConfig(cfg)
	ctx := t.Context()
	name := uniqueName("/token-refresher-test/tokens/refused-")
	t.Cleanup(func() {
		_, _ = client.DeleteParameter(context.WithoutCancel(ctx), &ssm.DeleteParameterInput{Name: &name})
	})
	now := time.Now().UTC().Truncate(time.Second)
	publish := func(access string) error {
		b, err := tokens.Token{AccessToken: access, TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Provider: "ecard"}.Marshal()
		if err != nil {
			return err
		}
		overwrite, value := true, string(b)
		_, err = client.PutParameter(ctx, &ssm.PutParameterInput{Name: &name, Value: &value, Type: types.ParameterTypeSecureString, Overwrite: &overwrite})
		return err
	}
	var mu sync.Mutex
	accepted := ""
	partnerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ok := accepted != "" && r.Header.Get("Authorization") == "Bearer "+accepted
		mu.Unlock()
		if !ok {
			http.Error(w, "invalid_token", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(partnerSrv.Close)
	send := func(t *testing.T, c *http.Client) map[int]int {
		t.Helper()
		var smu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() {
				res, err := c.Get(partnerSrv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_ = res.Body.Close()
				smu.Lock()
				statuses[res.StatusCode]++
				smu.Unlock()
			})
		}
		wg.Wait()
		return statuses
	}

	t.Run("without rotation", func(t *testing.T) {
		if err := publish("integration-refused-1"); err != nil {
			t.Fatal(err)
		}
		reader := &countingReader{ParameterReader: client}
		c := tokens.NewClient(ctx, tokens.NewSource(reader, name))
		if got := send(t, c); got[http.StatusUnauthorized] != requests {
			t.Fatalf("statuses %v, want %d times 401", got, requests)
		}
		if n := reader.reads(); n != 2 {
			t.Errorf("GetParameter calls = %d for %d concurrent 401s, want 2", n, requests)
		}
	})

	t.Run("with rotation", func(t *testing.T) {
		if err := publish("integration-refused-2"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		accepted = "integration-successor"
		mu.Unlock()
		var rotations []tokens.Rotation
		rotate := tokens.RotatorFunc(func(_ context.Context, r tokens.Rotation) error {
			mu.Lock()
			rotations = append(rotations, r)
			mu.Unlock()
			return publish("integration-successor")
		})
		reader := &countingReader{ParameterReader: client}
		c := tokens.NewClient(ctx, tokens.NewSource(reader, name, tokens.WithRotation(rotate)))
		if got := send(t, c); got[http.StatusOK] != requests {
			t.Fatalf("statuses %v, want %d times 200", got, requests)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(rotations) != 1 || rotations[0] != (tokens.Rotation{Provider: "ecard", IfToken: tokens.Fingerprint("integration-refused-2")}) {
			t.Errorf("rotations %v, want exactly one, for ecard if_token %s", rotations, tokens.Fingerprint("integration-refused-2"))
		}
		t.Logf("GetParameter calls for %d concurrent requests refused with the latest token: %d", requests, reader.reads())
	})
}
