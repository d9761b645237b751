package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProvidersPutRefusesOffline: put checks the whole file before it talks to AWS:
// every invalid entry and every secret outside the prefix is reported at once, and
// it stops with nothing stored. No bucket is given, so reaching AWS would be a
// usage error instead.
func TestProvidersPutRefusesOffline(t *testing.T) {
	t.Setenv("REGISTRY_BUCKET", "")
	t.Setenv("SECRET_NAME_PREFIX", "")
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"invalid entries", "providers:\n" +
			"  - {name: one, token_url: 'https://one.example/token', secret_id: token-refresher/one, colour: blue}\n" +
			"  - {name: Two, token_url: 'https://two.example/token', secret_id: token-refresher/two}\n",
			[]string{"colour", "line 2", `"Two"`, "line 3", "nothing was stored"}},
		{"secret outside the prefix", "providers:\n" +
			"  - {name: one, token_url: 'https://one.example/token', secret_id: other/one}\n" +
			"  - {name: two, token_url: 'https://two.example/token', secret_id: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:other/two-AbCdEf'}\n" +
			"  - {name: three, token_url: 'https://three.example/token', secret_id: token-refresher/three}\n",
			[]string{`"one"`, `"two"`, `outside the secret name prefix "token-refresher/"`, "nothing was stored"}},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"providers", "put", writeFile(t, tc.file)}, &out, &errOut)
		if code != exitProblem {
			t.Errorf("%s: got exit %d (stderr %s), want %d", tc.name, code, errOut.String(), exitProblem)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: got output %q, want it to contain %q", tc.name, out.String(), w)
			}
		}
		if strings.Contains(out.String(), "three") {
			t.Errorf("%s: got a valid provider reported: %q", tc.name, out.String())
		}
	}
}

// TestProvidersSecretPrefixFlag: -secret-prefix (or SECRET_NAME_PREFIX) is the
// prefix put checks against; a valid file then goes on to need a bucket.
func TestProvidersSecretPrefixFlag(t *testing.T) {
	t.Setenv("REGISTRY_BUCKET", "")
	file := writeFile(t, "providers:\n  - {name: one, token_url: 'https://one.example/token', secret_id: partners/one}\n")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"providers", "put", "-secret-prefix", "partners/", file}, &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), "REGISTRY_BUCKET") {
		t.Errorf("got exit %d, %q; want %d asking for the bucket", code, errOut.String(), exitUsage)
	}
}

func TestProvidersUsage(t *testing.T) {
	for _, args := range [][]string{{"providers"}, {"providers", "move"}, {"providers", "rm"}, {"providers", "list", "x"}, {"providers", "list", "-probe"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != exitUsage {
			t.Errorf("%v: got exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestSecretName(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"token-refresher/a", "token-refresher/a"},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-refresher/a-AbCdEf", "token-refresher/a-AbCdEf"},
	} {
		if got := secretName(tc.id); got != tc.want {
			t.Errorf("secretName(%q): got %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestStoredText: text read from the store cannot carry terminal control sequences.
func TestStoredText(t *testing.T) {
	if got, want := storedText("a\x1b[2Jb\tc\n\u009bd\x7f"), "a\uFFFD[2Jb\tc\n\uFFFDd\uFFFD"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
