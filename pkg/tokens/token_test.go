package tokens_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

func TestTokenNeverFormatted(t *testing.T) {
	tok := tokens.Token{AccessToken: "sekrit-access-token", TokenType: "Bearer", Provider: "p",
		IssuedAt: time.Unix(0, 0), ExpiresAt: time.Unix(3600, 0)}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("t", "token", tok)
	ptr := &tok // the token client returns pointers
	for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok),
		fmt.Sprintf("%v %+v %#v %s", ptr, ptr, ptr, ptr), logged.String()} {
		if strings.Contains(out, "sekrit") {
			t.Fatalf("got formatted token %s, want no access token in it", out)
		}
		if !strings.Contains(out, tokens.Fingerprint(tok.AccessToken)) {
			t.Fatalf("got %s, want the fingerprint %s in it", out, tokens.Fingerprint(tok.AccessToken))
		}
	}
}

// TestMarshalPublishedForm pins the published form consumers in every language parse:
// the field names, times in RFC 3339 UTC to the second, and the optional fields left
// out when empty. Fields may be added to it, never removed or renamed.
func TestMarshalPublishedForm(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tok := tokens.Token{AccessToken: "tok-A", TokenType: "Bearer", Provider: "ecard",
		IssuedAt:  time.Date(2026, 11, 22, 11, 0, 0, 900_000_000, cet),
		ExpiresAt: time.Date(2026, 11, 23, 11, 0, 0, 0, cet)}
	got, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"access_token":"tok-A","token_type":"Bearer","expires_at":"2026-11-23T10:00:00Z",` +
		`"issued_at":"2026-11-22T10:00:00Z","provider":"ecard"}`
	if string(got) != want {
		t.Errorf("Marshal\n got %s\nwant %s", got, want)
	}

	tok.Scope, tok.SecretVersion = "read:reports", "v1"
	got, err = tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"scope":"read:reports"`, `"secret_version":"v1"`} {
		if !strings.Contains(string(got), field) {
			t.Errorf("Marshal: got %s, want %s in it", got, field)
		}
	}
}

// TestParseIgnoresUnknownFields: a reader built today keeps working when the
// refresher adds a field to the published form.
func TestParseIgnoresUnknownFields(t *testing.T) {
	got, err := tokens.Parse([]byte(`{"access_token":"tok-A","token_type":"Bearer","expires_at":"2026-11-23T10:00:00Z",` +
		`"issued_at":"2026-11-22T10:00:00Z","provider":"ecard","added_later":{"any":["shape"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "tok-A" || !got.ExpiresAt.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("Parse = %v, want access token %q expiring at 2026-11-23T10:00:00Z", got, "tok-A")
	}
}
