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
			t.Fatalf("formatted token: %s", out)
		}
		if !strings.Contains(out, tokens.Fingerprint(tok.AccessToken)) {
			t.Fatalf("no fingerprint in %s", out)
		}
	}
}
