//go:build integration

package secrets

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

func TestIntegrationSecrets(t *testing.T) {
	cfg, calls := awstest.Counted(awstest.Config(t))
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(cfg)
	base := awstest.Secrets(t, cfg, "secrets-it-")

	const n = 25
	var ids []string
	versions := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("%sp%02d", base, i)
		ids = append(ids, id)
		versions[id] = awstest.PutSecret(t, sm, id, "id", fmt.Sprintf("secret-%d", i))
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(base + "bad"), SecretString: aws.String(`{"client_id":"x","client_secret":""}`)}); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, base+"bad", base+"missing")

	src := &Source{API: sm}
	calls.Reset()
	got, errs := src.Current(ctx, ids)
	if len(got) != n || len(errs) != 2 {
		t.Fatalf("got %d secrets and %d errors (%v), want %d and 2", len(got), len(errs), errs, n)
	}
	if !errors.Is(errs[base+"bad"], ErrMalformed) || !errors.Is(errs[base+"missing"], ErrNotFound) {
		t.Fatalf("got errors %v, want ErrMalformed for bad and ErrNotFound for missing", errs)
	}
	for i, id := range ids[:n] {
		if s := got[id]; s.ClientSecret != fmt.Sprintf("secret-%d", i) || s.VersionID != versions[id] {
			t.Fatalf("%s: got version %q (secret as written: %v), want version %q and its secret", id, s.VersionID, s.ClientSecret == fmt.Sprintf("secret-%d", i), versions[id])
		}
	}
	if b := calls.Count("Secrets Manager.BatchGetSecretValue"); b != 2 {
		t.Fatalf("%d BatchGetSecretValue calls for %d secrets, want 2", b, len(ids))
	}

	// Warm: no call at all.
	calls.Reset()
	src.Current(ctx, ids[:n])
	if c := calls.Total(); c != 0 {
		t.Fatalf("warm read: got %d calls, want 0", c)
	}

	// A new version: Fresh reads it, Previous the one before.
	v2 := awstest.PutSecret(t, sm, ids[0], "id", "rotated")
	fresh, err := src.Fresh(ctx, ids[0])
	if err != nil || fresh.ClientSecret != "rotated" || fresh.VersionID != v2 {
		t.Fatalf("Fresh: got version %q (rotated secret: %v), error %v; want version %q, the rotated secret", fresh.VersionID, fresh.ClientSecret == "rotated", err, v2)
	}
	prev, err := src.Previous(ctx, ids[0])
	if err != nil || prev.ClientSecret != "secret-0" || prev.VersionID != versions[ids[0]] {
		t.Fatalf("Previous: got version %q (first secret: %v), error %v; want version %q, the first secret", prev.VersionID, prev.ClientSecret == "secret-0", err, versions[ids[0]])
	}
	if _, err := src.Previous(ctx, ids[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Previous of a secret with one version: got %v, want ErrNotFound", err)
	}
}
