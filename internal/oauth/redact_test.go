package oauth_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/oauthtest"
)

// hostileSecrets have every character that an encoding changes.
var hostileSecrets = []string{
	"s3cr3t+/=% :with spaces",
	`quote"back\slash<&>'`,
	"ümlaut-é-日本-😀-long-enough",
	"plain0123456789abcdef",
	"a:b:c",
}

func assertNoForm(t *testing.T, where, text, id, secret string) {
	t.Helper()
	for _, f := range oauthtest.SecretForms(id, secret) {
		if strings.Contains(text, f) {
			t.Errorf("%s: got the secret as %q, want no form of it:\n%s", where, f, text)
		}
	}
}

// TestRedactEveryForm: every form a secret can take in an echo is removed, mixed
// into other text, at the start, at the end, and cut short.
func TestRedactEveryForm(t *testing.T) {
	for _, secret := range hostileSecrets {
		cred := oauth.Credentials{ClientID: "client id:1", ClientSecret: secret}
		for _, form := range oauthtest.SecretForms(cred.ClientID, secret) {
			for _, text := range []string{
				form,
				"before " + form + " after",
				"client_secret=" + form + "&grant_type=client_credentials",
				strings.Repeat("x", 300) + form,
			} {
				got := oauth.Redact(cred, text)
				assertNoForm(t, fmt.Sprintf("Redact(%.40q)", text), strings.ReplaceAll(got, "[redacted]", marker(secret)), cred.ClientID, secret)
				if !strings.Contains(got, "[redacted]") {
					t.Errorf("got %q from %q, want [redacted] in it", got, text)
				}
			}
		}
	}
	// Ordinary text is left alone.
	cred := oauth.Credentials{ClientID: "id", ClientSecret: "s3cr3t+/=% :with spaces"}
	if got := oauth.Redact(cred, "invalid_client: Client authentication failed"); got != "invalid_client: Client authentication failed" {
		t.Errorf("got %q, want ordinary text unchanged", got)
	}
}

// TestClientErrorsNeverCarryTheSecret drives every error path of the client with a
// provider that quotes the request back, in every dialect: the refusal's text, a
// token_type and an expires_in that are not what they should be, a malformed status
// line, which Go's HTTP client quotes in its error, and a 4 MiB status line. No form
// of the secret survives, and every error is bounded.
func TestClientErrorsNeverCarryTheSecret(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	kinds := []oauthtest.FaultKind{oauthtest.EchoError, oauthtest.EchoTokenType, oauthtest.EchoExpiresIn,
		oauthtest.EchoStatusLine, oauthtest.HugeStatusLine}
	for si, secret := range hostileSecrets {
		for _, d := range oauthtest.Dialects() {
			for _, kind := range kinds {
				name := fmt.Sprintf("%s-%s-%d", d, kind, si)
				t.Run(name, func(t *testing.T) {
					id := "client id:" + name
					if d == oauthtest.CheckIssuing {
						id = "client-id-" + name
					}
					u := srv.Add(oauthtest.Provider{Name: name, Dialect: d, ClientID: id, ClientSecret: secret})
					srv.SetFault(name, oauthtest.Fault{Kind: kind})
					_, err := fastClient().Token(context.Background(), d.Endpoint(u), oauth.Credentials{ClientID: id, ClientSecret: secret})
					if err == nil {
						t.Fatal("got no error, want one")
					}
					msg := err.Error()
					assertNoForm(t, "error", msg, id, secret)
					if len(msg) > oauth.MaxErrorLen+len("…") {
						t.Errorf("got an error of %d bytes, want at most %d", len(msg), oauth.MaxErrorLen+len("…"))
					}
					var oe *oauth.Error
					if errors.As(err, &oe) {
						assertNoForm(t, "Error fields", oe.Code+" "+oe.Description+" "+oe.RetryAfter, id, secret)
					}
					if kind == oauthtest.EchoStatusLine || kind == oauthtest.HugeStatusLine {
						if !errors.Is(err, oauth.ErrUnreachable) {
							t.Errorf("got %v, want ErrUnreachable", err)
						}
					}
				})
			}
		}
	}
}

// TestSanitizeRedactsBeforeItCuts: an error whose text holds the secret across the
// point where it is cut keeps no start of the secret, however few of its characters
// fall before the cut: the whole text is redacted first, and the marker is cut.
func TestSanitizeRedactsBeforeItCuts(t *testing.T) {
	for _, secret := range hostileSecrets {
		cred := oauth.Credentials{ClientID: "id", ClientSecret: secret}
		for k := 1; k <= 12; k++ {
			pad := strings.Repeat("x", oauth.MaxErrorLen-k)
			msg := oauth.Sanitize(errors.New(pad+secret+" tail"), cred).Error()
			rest, ok := strings.CutPrefix(strings.TrimSuffix(msg, "…"), pad)
			if !ok || !strings.HasPrefix("[redacted] tail", rest) {
				t.Errorf("%q with %d bytes before the cut: got an error ending %q, want the pad then a prefix of \"[redacted] tail\"", secret, k, msg[max(0, len(msg)-20):])
			}
			if len(msg) > oauth.MaxErrorLen+len("…") {
				t.Errorf("got an error of %d bytes, want at most %d", len(msg), oauth.MaxErrorLen+len("…"))
			}
		}
	}
}

// FuzzRedact: whatever the secret and the text around it, no form of the secret
// survives redaction. The seed inputs are the f.Add calls below.
func FuzzRedact(f *testing.F) {
	// Seed every form of each secret, so that the seeds alone (a plain go test)
	// check every encoding the redactor promises.
	for _, seed := range []struct{ secret, before, after string }{
		{"s3cr3t+/=% :with spaces", "before ", " after"},
		{`quote"back\slash<&>'`, "", ""},
		{"ümlaut-日本-😀", "x", "y"},
		// Shorter than the shortest redacted start, so every character counts.
		{"😀/k\"", "", ""},
	} {
		for i := range oauthtest.SecretForms("id", seed.secret) {
			f.Add(seed.secret, seed.before, seed.after, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, secret, before, after string, which uint8) {
		if !utf8.ValidString(secret) || secret == "" || strings.ContainsAny(before+after, "\x00") {
			t.Skip()
		}
		cred := oauth.Credentials{ClientID: "id", ClientSecret: secret}
		forms := oauthtest.SecretForms(cred.ClientID, secret)
		form := forms[int(which)%len(forms)]
		got := oauth.Redact(cred, before+form+after)
		// The marker itself may spell a short secret ("a"): look around it.
		if strings.Contains(strings.ReplaceAll(got, "[redacted]", marker(form)), form) {
			t.Fatalf("got %q with form %q of %q, want it redacted", got, form, secret)
		}
	})
}

// marker stands in for "[redacted]" when a test looks for a form: a character the
// form does not contain, so the marker cannot spell it.
func marker(form string) string {
	for _, m := range []string{"\x00", "\x01", "\uFFFE"} {
		if !strings.Contains(form, m) {
			return m
		}
	}
	return "\uFFFF"
}

// TestRedactShortSecretOnlyWhereItStandsAlone: a secret of a character or three
// cannot be told from the letters of words, so it is redacted where it stands
// alone, in its forms, and left alone inside words.
func TestRedactShortSecretOnlyWhereItStandsAlone(t *testing.T) {
	for _, tt := range []struct{ secret, text, want string }{
		{"b", "token endpoint unreachable", "token endpoint unreachable"},
		{"b", "secret b refused", "secret [redacted] refused"},
		{"b", "client_secret=b&grant_type=client_credentials", "client_secret=[redacted]&grant_type=client_credentials"},
		{"b", `{"client_secret":"b"}`, `{"client_secret":"[redacted]"}`},
		{"b", "ab b ba b", "ab [redacted] ba [redacted]"},
		{"+", "a+b client_secret=%2B", "a+b client_secret=[redacted]"},
		{"é", "café s=%C3%A9", "café s=[redacted]"},
		{"abc", "abcdef abc", "abcdef [redacted]"},
		// From minAnywhere characters on, a secret is redacted inside words too.
		{"abcd", "xabcdx", "x[redacted]x"},
	} {
		if got := oauth.Redact(oauth.Credentials{ClientID: "id", ClientSecret: tt.secret}, tt.text); got != tt.want {
			t.Errorf("secret %q: Redact(%q) = %q, want %q", tt.secret, tt.text, got, tt.want)
		}
	}
}

// TestRedactKeyForms: a private key, in each PEM encoding of RSA and EC keys, is
// removed in every form it can leak in (oauthtest.KeyForms: the PEM text, each of
// its lines and its DER's base64 in every form of a secret, the DER bytes), also as
// another DER encoding of the same key than the one the secret holds; and so are
// an assertion and a signature passed as made for the call, in every form of a
// base64 text. Ordinary text is left alone.
func TestRedactKeyForms(t *testing.T) {
	for _, tt := range []struct {
		name   string
		key    crypto.Signer
		format oauthtest.KeyFormat
	}{
		{"rsa-pkcs8", rsaKey, oauthtest.PKCS8},
		{"rsa-pkcs1", rsaKey, oauthtest.PKCS1},
		{"ec-pkcs8", ecKey, oauthtest.PKCS8},
		{"ec-sec1", ecKey, oauthtest.SEC1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cred := oauth.Credentials{ClientID: "id", PrivateKey: oauthtest.KeyPEM(tt.key, tt.format)}
			var forms []string
			for _, f := range []oauthtest.KeyFormat{oauthtest.PKCS8, oauthtest.PKCS1, oauthtest.SEC1} {
				if _, isRSA := tt.key.(*rsa.PrivateKey); (f == oauthtest.SEC1 && isRSA) || (f == oauthtest.PKCS1 && !isRSA) {
					continue
				}
				forms = append(forms, oauthtest.KeyForms(oauthtest.KeyPEM(tt.key, f))...)
			}
			for _, form := range forms {
				text := `{"error":"invalid_client","error_description":"bad key ` + form + ` (echoed)"}`
				got := oauth.Redact(cred, text)
				for _, f := range forms {
					if strings.Contains(got, f) {
						t.Fatalf("a form of the key survived redaction of %.60q: %.60q in %.200q", form, f, got)
					}
				}
			}
			if got := oauth.Redact(cred, "invalid_client: Client authentication failed"); got != "invalid_client: Client authentication failed" {
				t.Errorf("changed ordinary text: %q", got)
			}
		})
	}
	// Made for the call: an assertion and a signature, in every form.
	jws := "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJpZCJ9.c2lnbmF0dXJlLW9mLWEtY2xpZW50LWFzc2VydGlvbg"
	sig := "MEUCIQDxG4k2/+signature+der+of+a+kms+key=="
	for _, v := range []string{jws, jws[strings.LastIndexByte(jws, '.')+1:], sig} {
		forms := oauthtest.Base64TextForms(v)
		for _, form := range forms {
			got := oauth.RedactMade(oauth.Credentials{ClientID: "id"}, "before "+form+" after", jws, jws[strings.LastIndexByte(jws, '.')+1:], sig)
			for _, f := range forms {
				if strings.Contains(got, f) {
					t.Errorf("%q survived redaction of %q: %q", f, form, got)
				}
			}
		}
	}
}
