//go:build integration

package tokens_test

import (
	"context"
	"errors"
	"strings"
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
