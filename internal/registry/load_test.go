package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// entryYAML builds a one-provider registry from a valid base entry. Each argument is a
// "key: value" line that replaces the base line with that key, or is added; "-key"
// removes the base line and "+key: value" adds a line even if the key exists.
func entryYAML(lines ...string) string {
	base := []string{
		"name: p",
		"token_url: https://auth.example.com/oauth/token",
		"secret_id: token-refresher/p",
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "-"):
			base = removeKey(base, l[1:])
		case strings.HasPrefix(l, "+"):
			base = append(base, l[1:])
		default:
			key, _, _ := strings.Cut(l, ":")
			base = append(removeKey(base, key), l)
		}
	}
	return "providers:\n  - " + strings.Join(base, "\n    ") + "\n"
}

func removeKey(lines []string, key string) []string {
	out := lines[:0:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, key+":") {
			out = append(out, l)
		}
	}
	return out
}

func load(t *testing.T, doc string, opts Options) (*Registry, error) {
	t.Helper()
	return Load(strings.NewReader(doc), opts)
}

func mustLoad(t *testing.T, doc string, opts Options) *Registry {
	t.Helper()
	reg, err := load(t, doc, opts)
	if err != nil {
		t.Fatalf("Load:\n%s\ngot %v, want no error", doc, err)
	}
	return reg
}

func TestLoadDefaults(t *testing.T) {
	reg := mustLoad(t, entryYAML(), Options{})
	ps := reg.Providers()
	if len(ps) != 1 {
		t.Fatalf("got %d providers, want 1", len(ps))
	}
	p := ps[0]
	want := Provider{
		Name: "p",
		Endpoint: oauth.Endpoint{
			TokenURL:      p.TokenURL,
			AuthMethod:    oauth.ClientSecretPost,
			BasicEncoding: oauth.BasicForm,
			RequestFormat: oauth.FormRequest,
		},
		SecretID:    "token-refresher/p",
		Parameter:   "/token-refresher/tokens/p",
		MaxLifetime: defaultMaxLifetime,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if got := p.TokenURL.String(); got != "https://auth.example.com/oauth/token" {
		t.Errorf("TokenURL = %q, want https://auth.example.com/oauth/token", got)
	}
	if got := reg.ParameterPrefix(); got != DefaultParameterPrefix {
		t.Errorf("ParameterPrefix() = %q, want %q", got, DefaultParameterPrefix)
	}
}

func TestLoadAllFields(t *testing.T) {
	doc := `providers:
  - name: full_1
    token_url: http://127.0.0.1:8080/token?tenant=a
    secret_id: arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-refresher/full-AbC123
    auth_method: client_secret_basic
    basic_auth_encoding: raw
    request_format: json
    scope: "read:reports write:reports"
    audience: https://api.example.com
    extra_params: {resource: "https://api.example.com", tenant: "42"}
    headers: {Accept: application/json, X-Api-Version: "2"}
    response:
      access_token: /data/attributes/access_token
      token_type: /data/attributes/token_type
      expires_in: /data/attributes/expires_in
      scope: /data/attributes/scope
    refresh_before: 15m
    max_age: 30d
    max_lifetime: 400d
    default_lifetime: 1h30m
    parameter: /token-refresher/tokens/team-a/full
`
	p, ok := mustLoad(t, doc, Options{}).Lookup("full_1")
	if !ok {
		t.Fatal("Lookup(full_1) = false, want true")
	}
	want := Provider{
		Name: "full_1",
		Endpoint: oauth.Endpoint{
			TokenURL:      p.TokenURL,
			AuthMethod:    oauth.ClientSecretBasic,
			BasicEncoding: oauth.BasicRaw,
			RequestFormat: oauth.JSONRequest,
			Scope:         "read:reports write:reports",
			Audience:      "https://api.example.com",
			ExtraParams:   map[string]string{"resource": "https://api.example.com", "tenant": "42"},
			Headers:       map[string]string{"Accept": "application/json", "X-Api-Version": "2"},
			Response: oauth.ResponseFields{
				AccessToken: "/data/attributes/access_token",
				TokenType:   "/data/attributes/token_type",
				ExpiresIn:   "/data/attributes/expires_in",
				Scope:       "/data/attributes/scope",
			},
			DefaultLifetime: 90 * time.Minute,
		},
		SecretID:      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-refresher/full-AbC123",
		RefreshBefore: 15 * time.Minute,
		MaxAge:        30 * 24 * time.Hour,
		MaxLifetime:   400 * 24 * time.Hour,
		Parameter:     "/token-refresher/tokens/team-a/full",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if got := p.TokenURL.String(); got != "http://127.0.0.1:8080/token?tenant=a" {
		t.Errorf("TokenURL = %q, want http://127.0.0.1:8080/token?tenant=a", got)
	}
}

func TestLoadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
	}{
		{"http localhost", entryYAML("token_url: http://localhost:9000/token")},
		{"http LOCALHOST", entryYAML("token_url: http://LOCALHOST/token")},
		{"http ipv6 loopback", entryYAML("token_url: http://[::1]:9000/token")},
		{"http 127/8", entryYAML("token_url: http://127.1.2.3/token")},
		{"empty optional strings", entryYAML(`scope: ""`, "audience:", "parameter: ''", "refresh_before: ~")},
		{"null maps", entryYAML("headers:", "extra_params: ~", "response: {}")},
		{"form with post", entryYAML("auth_method: client_secret_post", "basic_auth_encoding: form")},
		{"empty pointer means unaided", entryYAML(`response: {access_token: ""}`)},
		{"partial ARN", entryYAML("secret_id: arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x")},
		{"header value empty", entryYAML(`headers: {X-Empty: ""}`)},
		{"anchors and aliases", "providers:\n" +
			"  - {name: a, token_url: 'https://a.example/t', secret_id: a, headers: &h {Accept: application/json}}\n" +
			"  - {name: b, token_url: 'https://b.example/t', secret_id: b, headers: *h}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := mustLoad(t, tc.doc, Options{})
			for _, p := range reg.Providers() {
				if p.AuthMethod == "" || p.BasicEncoding == "" || p.RequestFormat == "" || p.Parameter == "" {
					t.Errorf("got %+v, want auth_method, basic_auth_encoding, request_format and parameter set by default", p)
				}
			}
			if tc.name == "anchors and aliases" {
				if b, _ := reg.Lookup("b"); b.Headers["Accept"] != "application/json" {
					t.Errorf("b.Headers = %v, want Accept: application/json from the alias", b.Headers)
				}
			}
		})
	}
}

func TestLoadFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		doc      string
		provider string // "" means the entry is identified by index
		field    string
		is       error
		msg      string
	}{
		// Structure.
		{"unknown field", entryYAML("scopes: read"), "p", "scopes", errUnknownField, `provider "p": unknown field "scopes" (line 5)`},
		{"duplicate key", entryYAML("+scope: a", "+scope: b"), "p", "scope", errDuplicateKey, "first at line 5"},
		{"entry not a mapping", "providers:\n  - just-a-string\n", "", "", errInvalid, "providers[0]: must be a mapping"},
		{"string field is a list", entryYAML("scope: [a, b]"), "p", "scope", errInvalid, "must be a string, not a list"},
		// name
		{"name missing", entryYAML("-name"), "", "name", errRequired, "providers[0]: name: required"},
		{"name empty", entryYAML(`name: ""`), "", "name", errRequired, "providers[0]: name: required"},
		{"name upper case", entryYAML("name: ECard"), "ECard", "name", errInvalid, "use only a-z"},
		{"name with slash", entryYAML("name: a/b"), "a/b", "name", errInvalid, "use only a-z"},
		{"name too long", entryYAML("name: " + strings.Repeat("a", 65)), strings.Repeat("a", 65), "name", errInvalid, "longer than 64"},
		// token_url
		{"token_url missing", entryYAML("-token_url"), "p", "token_url", errRequired, "token_url: required"},
		{"token_url and issuer", entryYAML("issuer: https://auth.example.com"), "p", "issuer", errInvalid, "token_url or issuer, not both"},
		{"issuer http remote", entryYAML("-token_url", "issuer: http://auth.example.com"), "p", "issuer", errInvalid, "loopback"},
		{"issuer query", entryYAML("-token_url", "issuer: https://auth.example.com/?tenant=a"), "p", "issuer", errInvalid, "query"},
		{"token_url relative", entryYAML("token_url: /oauth/token"), "p", "token_url", errInvalid, "absolute URL"},
		{"token_url no scheme", entryYAML("token_url: auth.example.com/token"), "p", "token_url", errInvalid, "absolute URL"},
		{"token_url http remote", entryYAML("token_url: http://auth.example.com/token"), "p", "token_url", errInvalid, `loopback host (127.0.0.0/8, ::1, localhost), not "auth.example.com"`},
		{"token_url http private", entryYAML("token_url: http://10.0.0.1/token"), "p", "token_url", errInvalid, "loopback"},
		{"token_url http localhost subdomain", entryYAML("token_url: http://localhost.evil.com/token"), "p", "token_url", errInvalid, "loopback"},
		{"token_url ftp", entryYAML("token_url: ftp://auth.example.com/token"), "p", "token_url", errInvalid, `scheme "ftp"`},
		{"token_url userinfo", entryYAML("token_url: https://id:hunter2@auth.example.com/token"), "p", "token_url", errInvalid, "user info"},
		{"token_url fragment", entryYAML("token_url: https://auth.example.com/token#x"), "p", "token_url", errInvalid, "fragment"},
		{"token_url bad port", entryYAML("token_url: https://auth.example.com:x/token"), "p", "token_url", errInvalid, "not a valid URL"},
		{"token_url no host", entryYAML("token_url: https://:443/token"), "p", "token_url", errInvalid, "no host"},
		// secret_id
		{"secret_id missing", entryYAML("-secret_id"), "p", "secret_id", errRequired, "secret_id: required"},
		{"secret_id bad char", entryYAML("secret_id: my secret"), "p", "secret_id", errInvalid, "not allowed"},
		{"secret_id wrong service", entryYAML("secret_id: arn:aws:ssm:eu-west-1:123456789012:secret:x"), "p", "secret_id", errInvalid, "want secretsmanager"},
		{"secret_id short ARN", entryYAML("secret_id: arn:aws:secretsmanager:eu-west-1:123456789012:x"), "p", "secret_id", errInvalid, "want arn:PARTITION"},
		{"secret_id bad account", entryYAML("secret_id: arn:aws:secretsmanager:eu-west-1:1234:secret:x"), "p", "secret_id", errInvalid, "12 digits"},
		{"secret_id bad resource type", entryYAML("secret_id: arn:aws:secretsmanager:eu-west-1:123456789012:key:x"), "p", "secret_id", errInvalid, "want secret"},
		{"secret_id ARN empty name", entryYAML("secret_id: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:'"), "p", "secret_id", errInvalid, "empty secret name"},
		// dialect
		{"auth_method unknown", entryYAML("auth_method: private_key"), "p", "auth_method", errInvalid, `"private_key": want client_secret_post, client_secret_basic, private_key_jwt, client_secret_jwt, tls_client_auth or self_signed_tls_client_auth`},
		{"raw with private_key_jwt", entryYAML("auth_method: private_key_jwt", "basic_auth_encoding: raw"), "p", "basic_auth_encoding", errInvalid, "no effect with auth_method private_key_jwt"},
		// client authentication without a shared secret
		{"signing_key without private_key_jwt", entryYAML("signing_key: kms:alias/k"), "p", "signing_key", errInvalid, "only with auth_method private_key_jwt, not client_secret_post"},
		{"signing_key with client_secret_jwt", entryYAML("auth_method: client_secret_jwt", "signing_key: kms:alias/k"), "p", "signing_key", errInvalid, "only with auth_method private_key_jwt"},
		{"signing_key no scheme", entryYAML("auth_method: private_key_jwt", "signing_key: alias/k"), "p", "signing_key", errInvalid, "want kms:"},
		{"signing_key bad id", entryYAML("auth_method: private_key_jwt", "signing_key: kms:1234"), "p", "signing_key", errInvalid, "not a KMS key id"},
		{"signing_key aws alias", entryYAML("auth_method: private_key_jwt", "signing_key: kms:alias/aws/ssm"), "p", "signing_key", errInvalid, "cannot sign"},
		{"signing_key bad alias", entryYAML("auth_method: private_key_jwt", "signing_key: 'kms:alias/a b'"), "p", "signing_key", errInvalid, "an alias is"},
		{"signing_key ARN of s3", entryYAML("auth_method: private_key_jwt", "signing_key: kms:arn:aws:s3:::bucket"), "p", "signing_key", errInvalid, "an ARN of s3"},
		{"signing_key ARN not an ARN", entryYAML("auth_method: private_key_jwt", "signing_key: kms:arn:aws"), "p", "signing_key", errInvalid, "not a valid ARN"},
		{"signing_key ARN resource", entryYAML("auth_method: private_key_jwt", "signing_key: kms:arn:aws:kms:eu-west-1:123456789012:keyring/x"), "p", "signing_key", errInvalid, "key/<key id> or alias/<name>"},
		{"signing_key ARN bad key id", entryYAML("auth_method: private_key_jwt", "signing_key: kms:arn:aws:kms:eu-west-1:123456789012:key/nope"), "p", "signing_key", errInvalid, "key/<key id> or alias/<name>"},
		{"signing_alg unknown", entryYAML("auth_method: private_key_jwt", "signing_alg: RS512"), "p", "signing_alg", errInvalid, "want RS256, PS256 or ES256"},
		{"signing_alg HS256 with private_key_jwt", entryYAML("auth_method: private_key_jwt", "signing_alg: HS256"), "p", "signing_alg", errInvalid, "want RS256, PS256 or ES256"},
		{"signing_alg RS256 with client_secret_jwt", entryYAML("auth_method: client_secret_jwt", "signing_alg: RS256"), "p", "signing_alg", errInvalid, `"RS256": want`},
		{"signing_alg with mTLS", entryYAML("auth_method: tls_client_auth", "signing_alg: RS256"), "p", "signing_alg", errInvalid, "only with auth_method private_key_jwt or client_secret_jwt, not tls_client_auth"},
		{"key_id with secret", entryYAML("key_id: k1"), "p", "key_id", errInvalid, "only with auth_method private_key_jwt or client_secret_jwt"},
		{"assertion_audience with basic", entryYAML("auth_method: client_secret_basic", "assertion_audience: x"), "p", "assertion_audience", errInvalid, "not client_secret_basic"},
		{"assertion_audience control", entryYAML("auth_method: private_key_jwt", `assertion_audience: "a\nb"`), "p", "assertion_audience", errInvalid, "control character"},
		{"basic_auth_encoding unknown", entryYAML("auth_method: client_secret_basic", "basic_auth_encoding: base64"), "p", "basic_auth_encoding", errInvalid, "want form or raw"},
		{"raw with post", entryYAML("basic_auth_encoding: raw"), "p", "basic_auth_encoding", errInvalid, "no effect with auth_method client_secret_post"},
		{"request_format unknown", entryYAML("request_format: xml"), "p", "request_format", errInvalid, "want form or json"},
		// scope, audience
		{"scope double space", entryYAML(`scope: "a  b"`), "p", "scope", errInvalid, "single spaces"},
		{"scope newline", entryYAML(`scope: "a\nb"`), "p", "scope", errInvalid, "not allowed in a scope"},
		{"scope quote", entryYAML(`scope: 'a"b'`), "p", "scope", errInvalid, "not allowed in a scope"},
		{"audience control char", entryYAML(`audience: "a\nb"`), "p", "audience", errInvalid, "control character"},
		// extra_params
		{"extra_params not a map", entryYAML("extra_params: [a]"), "p", "extra_params", errInvalid, "mapping of strings"},
		{"extra_params value not a string", entryYAML("extra_params: {a: [1]}"), "p", "extra_params.a", errInvalid, "must be a string"},
		{"extra_params null value", entryYAML("extra_params: {a: }"), "p", "extra_params.a", errInvalid, "must be a string, not null"},
		{"extra_params duplicate", entryYAML("extra_params: {a: x, a: y}"), "p", "extra_params.a", errDuplicateKey, "duplicate key"},
		{"extra_params grant_type", entryYAML("extra_params: {grant_type: password}"), "p", "extra_params.grant_type", errReserved, "reserved"},
		{"extra_params client_id", entryYAML("extra_params: {client_id: x}"), "p", "extra_params.client_id", errReserved, "secret_id"},
		{"extra_params client_secret", entryYAML("extra_params: {client_secret: x}"), "p", "extra_params.client_secret", errReserved, "secret_id"},
		{"extra_params scope", entryYAML("extra_params: {scope: x}"), "p", "extra_params.scope", errReserved, "use the scope field"},
		{"extra_params audience", entryYAML("extra_params: {audience: x}"), "p", "extra_params.audience", errReserved, "use the audience field"},
		// headers
		{"header bad name", entryYAML(`headers: {"X Api": x}`), "p", "headers.X Api", errInvalid, "not a valid header name"},
		{"header Authorization", entryYAML("headers: {Authorization: Bearer x}"), "p", "headers.Authorization", errReserved, "reserved"},
		{"header content-type any case", entryYAML("headers: {content-type: application/json; charset=utf-8}"), "p", "headers.content-type", errReserved, "request_format"},
		{"header Content-Length", entryYAML("headers: {Content-Length: '1'}"), "p", "headers.Content-Length", errReserved, "reserved"},
		{"header Host", entryYAML("headers: {Host: x}"), "p", "headers.Host", errReserved, "token_url"},
		{"header value newline", entryYAML(`headers: {X-Key: "sec\nret"}`), "p", "headers.X-Key", errInvalid, "control character"},
		{"header case duplicate", entryYAML("headers: {Accept: a, accept: b}"), "p", "headers.accept", errDuplicateKey, `same header as "Accept"`},
		// response
		{"response unknown key", entryYAML("response: {token: /x}"), "p", "response.token", errUnknownField, `unknown field "response.token"`},
		{"response not a map", entryYAML("response: /x"), "p", "response", errInvalid, "must be a mapping"},
		{"response bad pointer", entryYAML("response: {access_token: data/access_token}"), "p", "response.access_token", errInvalidPointer, `start with "/"`},
		{"response bad escape", entryYAML("response: {expires_in: /a~2b}"), "p", "response.expires_in", errInvalidPointer, "followed by 0 or 1"},
		{"response duplicate", entryYAML("response: {scope: /a, scope: /b}"), "p", "response.scope", errDuplicateKey, "duplicate key"},
		// durations
		{"refresh_before bad unit", entryYAML("refresh_before: 15x"), "p", "refresh_before", errInvalid, `provider "p": refresh_before: invalid duration "15x"`},
		{"refresh_before no unit", entryYAML("refresh_before: 900"), "p", "refresh_before", errInvalid, `invalid duration "900"`},
		{"max_age zero", entryYAML("max_age: 0s"), "p", "max_age", errInvalid, "must be positive"},
		{"max_age zero days", entryYAML("max_age: 0d"), "p", "max_age", errInvalid, "must be positive"},
		{"max_age negative", entryYAML("max_age: -5m"), "p", "max_age", errInvalid, "must be positive"},
		{"max_age days overflow", entryYAML("max_age: 999999999d"), "p", "max_age", errInvalid, "out of range"},
		{"max_lifetime zero", entryYAML("max_lifetime: 0s"), "p", "max_lifetime", errInvalid, "must be positive"},
		{"default_lifetime mixed days", entryYAML("default_lifetime: 1d12h"), "p", "default_lifetime", errInvalid, "invalid duration"},
		// parameter
		{"parameter relative", entryYAML("parameter: token-refresher/tokens/p"), "p", "parameter", errInvalid, `must start with "/"`},
		{"parameter bad char", entryYAML("parameter: /token-refresher/tokens/p q"), "p", "parameter", errInvalid, "not allowed"},
		{"parameter double slash", entryYAML("parameter: /token-refresher/tokens//p"), "p", "parameter", errInvalid, `"//"`},
		{"parameter trailing slash", entryYAML("parameter: /token-refresher/tokens/p/"), "p", "parameter", errInvalid, `must not end with "/"`},
		{"parameter too long", entryYAML("parameter: /token-refresher/tokens/" + strings.Repeat("a", 1000)), "p", "parameter", errInvalid, "longer than 1011"},
		{"parameter too deep", entryYAML("parameter: /token-refresher/tokens" + strings.Repeat("/a", 14)), "p", "parameter", errInvalid, "15 levels"},
		{"parameter /aws", entryYAML("parameter: /AWS/x"), "p", "parameter", errInvalid, "reserved by AWS"},
		{"parameter /ssm", entryYAML("parameter: /ssm/x"), "p", "parameter", errInvalid, "reserved by AWS"},
		{"parameter outside prefix", entryYAML("parameter: /other/p"), "p", "parameter", errOutsidePrefix, "IAM policy"},
		{"parameter is a sibling of the prefix", entryYAML("parameter: /token-refresher/tokens-old/p"), "p", "parameter", errOutsidePrefix, "not under the parameter prefix /token-refresher/tokens/"},
		{"parameter is the prefix", entryYAML("parameter: /token-refresher/tokens"), "p", "parameter", errOutsidePrefix, "not under"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.doc, Options{})
			if err == nil {
				t.Fatalf("Load succeeded on\n%s\nwant an error", tc.doc)
			}
			checkFieldError(t, err, tc.provider, 0, tc.field, tc.is, tc.msg)
		})
	}
}

// checkFieldError asserts that err holds exactly one problem, a *fieldError with the
// given provider and field, whose message names both.
func checkFieldError(t *testing.T, err error, provider string, index int, field string, is error, msg string) {
	t.Helper()
	if errs := allErrors(err); len(errs) != 1 {
		t.Errorf("want exactly one error, got %d:\n%v", len(errs), err)
	}
	var fe *fieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %T: %v, want a *fieldError", err, err)
	}
	if fe.Provider != provider || fe.Index != index || fe.Field != field {
		t.Errorf("fieldError{Provider: %q, Index: %d, Field: %q}, want {%q, %d, %q}", fe.Provider, fe.Index, fe.Field, provider, index, field)
	}
	if !errors.Is(err, is) {
		t.Errorf("got %v, want an error that is %v", err, is)
	}
	text := err.Error()
	label := `provider "` + provider + `"`
	if provider == "" {
		label = fmt.Sprintf("providers[%d]", index)
	}
	if !strings.Contains(text, label) {
		t.Errorf("got %q, want it to name the provider (%s)", text, label)
	}
	if field != "" && !strings.Contains(text, field) {
		t.Errorf("got %q, want it to name the field %q", text, field)
	}
	if !strings.Contains(text, msg) {
		t.Errorf("got %q, want it to contain %q", text, msg)
	}
	if fe.Line == 0 {
		t.Errorf("got line 0 in %v, want the line of the problem", fe)
	}
}

func allErrors(err error) []error {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		return m.Unwrap()
	}
	return []error{err}
}

func TestLoadCrossProviderErrors(t *testing.T) {
	t.Run("duplicate name", func(t *testing.T) {
		doc := "providers:\n" +
			"  - {name: a, token_url: 'https://a.example/t', secret_id: a}\n" +
			"  - {name: a, token_url: 'https://b.example/t', secret_id: b}\n"
		_, err := load(t, doc, Options{})
		checkFieldError(t, err, "a", 1, "name", errDuplicate, `provider "a" (providers[1]): name: "a" is also the name of providers[0]`)
	})
	t.Run("duplicate parameter", func(t *testing.T) {
		doc := "providers:\n" +
			"  - {name: a, token_url: 'https://a.example/t', secret_id: a}\n" +
			"  - {name: b, token_url: 'https://b.example/t', secret_id: b, parameter: /token-refresher/tokens/a}\n"
		_, err := load(t, doc, Options{})
		checkFieldError(t, err, "b", 1, "parameter", errDuplicate, `also the parameter of provider "a"`)
	})
	t.Run("second entry by index", func(t *testing.T) {
		doc := "providers:\n" +
			"  - {name: a, token_url: 'https://a.example/t', secret_id: a}\n" +
			"  - {token_url: 'https://b.example/t', secret_id: b}\n"
		_, err := load(t, doc, Options{})
		checkFieldError(t, err, "", 1, "name", errRequired, "providers[1]: name: required (line 3)")
	})
}

func TestLoadDocumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		is        error
		msg       string
	}{
		{"empty file", "", ErrNoProviders, "empty"},
		{"only comments", "# nothing\n", ErrNoProviders, "empty"},
		{"null document", "---\n", ErrNoProviders, "no providers"},
		{"no providers key", "other: 1\n", ErrNoProviders, `no "providers" list`},
		{"empty list", "providers: []\n", ErrNoProviders, "empty"},
		{"null list", "providers:\n", ErrNoProviders, "empty"},
		{"providers not a list", "providers: {a: 1}\n", errInvalid, "must be a list"},
		{"root is a list", "- a\n", errInvalid, "must be a mapping"},
		{"unknown top-level key", entryYAML() + "version: 2\n", errUnknownField, `unknown top-level field "version" (line 5)`},
		{"duplicate providers key", entryYAML() + "providers: []\n", errDuplicateKey, `duplicate top-level key "providers"`},
		{"two documents", entryYAML() + "---\n" + entryYAML(), errInvalid, "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.doc, Options{})
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want an error that is %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	t.Run("syntax error", func(t *testing.T) {
		_, err := load(t, "providers:\n  - name: [\n", Options{})
		if err == nil || !strings.Contains(err.Error(), "not valid YAML") {
			t.Errorf("got %v, want a YAML syntax error", err)
		}
	})
	t.Run("syntax error names its line", func(t *testing.T) {
		// Line 4 is indented less than the mapping it belongs to; yaml's parser knows
		// the line, though its message would name where the enclosing block began.
		doc := "providers:\n  - name: a\n    token_url: https://a.example/t\n   secret_id: a\n"
		_, err := load(t, doc, Options{})
		if want := "providers file is not valid YAML: line 4: "; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("got %v, want an error starting %q", err, want)
		}
	})
	t.Run("too large", func(t *testing.T) {
		_, err := load(t, entryYAML()+"#"+strings.Repeat("x", maxFileSize)+"\n", Options{})
		if !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("got %v, want errInvalid saying larger than", err)
		}
	})
}

// TestLoadCollectsAllErrors: a user fixes a file in one go, so every problem is
// reported, each provider's in line order.
func TestLoadCollectsAllErrors(t *testing.T) {
	doc := `providers:
  - name: ecard
    token_url: http://platform.ecardsystems.com/token
    secret_id: token-refresher/ecard
    scopes: read
    refresh_before: 15x
  - name: Bad
    secret_id: x
  - name: ok
    token_url: https://ok.example.com/token
    secret_id: ok
extra: 1
`
	_, err := load(t, doc, Options{})
	want := []string{
		`unknown top-level field "extra" (line 12)`,
		`provider "ecard": token_url: http is allowed only for a loopback host`,
		`provider "ecard": unknown field "scopes" (line 5)`,
		`provider "ecard": refresh_before: invalid duration "15x"`,
		`provider "Bad": name: "Bad": use only a-z`,
		`provider "Bad": token_url: required (or issuer, to discover the token endpoint) (line 7)`,
	}
	errs := allErrors(err)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
		}
	}
}

func TestParameterPrefix(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, param, wantPrefix, wantParam string
	}{
		{"custom", "/acme/prod/tokens", "", "/acme/prod/tokens", "/acme/prod/tokens/p"},
		{"trailing slash", "/acme/tokens/", "", "/acme/tokens", "/acme/tokens/p"},
		{"explicit under custom", "/acme/tokens", "/acme/tokens/x/p", "/acme/tokens", "/acme/tokens/x/p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			if tc.param != "" {
				lines = append(lines, "parameter: "+tc.param)
			}
			reg := mustLoad(t, entryYAML(lines...), Options{ParameterPrefix: tc.prefix})
			p, _ := reg.Lookup("p")
			if reg.ParameterPrefix() != tc.wantPrefix || p.Parameter != tc.wantParam {
				t.Errorf("prefix %q parameter %q, want %q %q", reg.ParameterPrefix(), p.Parameter, tc.wantPrefix, tc.wantParam)
			}
		})
	}
	t.Run("explicit outside custom", func(t *testing.T) {
		_, err := load(t, entryYAML("parameter: /token-refresher/tokens/p"), Options{ParameterPrefix: "/acme/tokens"})
		checkFieldError(t, err, "p", 0, "parameter", errOutsidePrefix, "/acme/tokens/")
	})
	t.Run("default too long", func(t *testing.T) {
		prefix := "/" + strings.Repeat("a", 1000)
		_, err := load(t, entryYAML("name: "+strings.Repeat("b", 20)), Options{ParameterPrefix: prefix})
		checkFieldError(t, err, strings.Repeat("b", 20), 0, "parameter", errInvalid, "default parameter")
	})
	for _, bad := range []string{"/", "relative/path", "/aws/tokens", "/a b", "/a//b"} {
		t.Run("invalid prefix "+bad, func(t *testing.T) {
			_, err := load(t, entryYAML(), Options{ParameterPrefix: bad})
			if !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), "parameter prefix") {
				t.Errorf("got %v, want errInvalid naming the parameter prefix", err)
			}
		})
	}
}

// TestShippedRegistry: the example registry configures the five seed providers,
// and the embedded default is empty, so a build without a registry is unconfigured
// rather than a deployment of placeholder hosts that fail by design.
func TestShippedRegistry(t *testing.T) {
	reg, err := LoadFile(filepath.Join("..", "..", "functions", "refresher", "providers.example.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	type dialect struct {
		url     string
		auth    oauth.AuthMethod
		enc     oauth.BasicEncoding
		format  oauth.RequestFormat
		headers map[string]string
	}
	want := map[string]dialect{
		"ecard":        {"https://platform.ecardsystems.com/api/reporting/v1/auth/token", oauth.ClientSecretPost, oauth.BasicForm, oauth.JSONRequest, nil},
		"booking":      {"https://partner-booking.example.com/api/oauth/token", oauth.ClientSecretPost, oauth.BasicForm, oauth.JSONRequest, map[string]string{"Accept": "application/json"}},
		"opencard":     {"https://sandbox-api.opencard.io/oauth/token", oauth.ClientSecretPost, oauth.BasicForm, oauth.FormRequest, nil},
		"cardlytics":   {"https://api.cardlytics.com/api/v1/idp/oauth2/token", oauth.ClientSecretPost, oauth.BasicForm, oauth.FormRequest, nil},
		"checkissuing": {"https://checkissuing.example.com/oauth/token", oauth.ClientSecretBasic, oauth.BasicForm, oauth.FormRequest, nil},
	}
	ps := reg.Providers()
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("got provider %q, want only the five seed providers", p.Name)
			continue
		}
		got := dialect{p.TokenURL.String(), p.AuthMethod, p.BasicEncoding, p.RequestFormat, p.Headers}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: got %+v, want %+v", p.Name, got, w)
		}
		if p.SecretID != "token-refresher/"+p.Name {
			t.Errorf("%s: got secret_id %q, want token-refresher/%s", p.Name, p.SecretID, p.Name)
		}
		if p.Parameter != "/token-refresher/tokens/"+p.Name {
			t.Errorf("%s: got parameter %q, want /token-refresher/tokens/%s", p.Name, p.Parameter, p.Name)
		}
		if p.Response != (oauth.ResponseFields{}) {
			t.Errorf("%s: response pointers %+v, want none (JSON:API and flat are found unaided)", p.Name, p.Response)
		}
	}
	if got := strings.Join(names, ","); got != "ecard,booking,opencard,cardlytics,checkissuing" {
		t.Errorf("got providers in order %s, want ecard,booking,opencard,cardlytics,checkissuing", got)
	}
	opencard, _ := reg.Lookup("opencard")
	const emsScopes = "account-tpas-read account-tpas-write account-tpa-signatories-write account-tpa-identities-read " +
		"organizations-read organizations-write card-holders-read card-holders-write " +
		"webhooks-read webhooks-write webhook-events-read public-records-read " +
		"account-card-issuers-read account-card-issuers-write oauth-clients-read billings-write receipts-write"
	if opencard.Scope != emsScopes {
		t.Errorf("opencard scope\n got %q\nwant %q", opencard.Scope, emsScopes)
	}
	if opencard.MaxAge != 30*24*time.Hour {
		t.Errorf("got opencard max_age %v, want 720h", opencard.MaxAge)
	}
	if _, err := LoadFile(filepath.Join("..", "..", "functions", "refresher", "providers.yaml"), Options{}); !errors.Is(err, ErrNoProviders) {
		t.Errorf("embedded default registry: %v, want ErrNoProviders", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(path, []byte(entryYAML("scopes: x", "max_age: 1y")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), path+": 2 problems:\n") {
		t.Errorf("got %v, want it to start %q", err, path+": 2 problems:\n")
	}
	if !errors.Is(err, errUnknownField) || !errors.Is(err, errInvalid) {
		t.Errorf("got %v, want an error that is both errUnknownField and errInvalid", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := load(t, entryYAML("name: ecard", "refresh_before: 15x"), Options{})
	var fe *fieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *fieldError", err)
	}
	if fe.Provider != "ecard" || fe.Field != "refresh_before" || fe.Line != 5 || !errors.Is(fe, errInvalid) {
		t.Errorf("got %+v, want ecard, refresh_before, line 5, errInvalid", fe)
	}
	if got, want := fe.Error(), `provider "ecard": refresh_before: invalid duration "15x"`; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want prefix %q", got, want)
	}
}

func TestRegistryIsImmutable(t *testing.T) {
	reg := mustLoad(t, entryYAML("headers: {Accept: a}"), Options{})
	p, _ := reg.Lookup("p")
	p.Headers["Accept"] = "changed"
	p.TokenURL.Host = "evil.example.com"
	reg.Providers()[0].Headers["X"] = "y"
	again, _ := reg.Lookup("p")
	if again.Headers["Accept"] != "a" || len(again.Headers) != 1 || again.TokenURL.Host != "auth.example.com" {
		t.Errorf("got %+v after changing a returned copy, want the provider as loaded", again)
	}
	if _, ok := reg.Lookup("nope"); ok {
		t.Error("Lookup(nope) = true, want false")
	}
}

func TestBySecret(t *testing.T) {
	const (
		acct   = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
		other  = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:"
		region = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	)
	doc := `providers:
  - {name: by-name, token_url: 'https://a.example/t', secret_id: token-refresher/a}
  - {name: by-partial, token_url: 'https://a.example/t', secret_id: '` + acct + `token-refresher/b'}
  - {name: by-full, token_url: 'https://a.example/t', secret_id: '` + acct + `token-refresher/c-Xy12Z9'}
  - {name: shares-a, token_url: 'https://a.example/t', secret_id: token-refresher/a}
  - {name: suffix-like, token_url: 'https://a.example/t', secret_id: token-refresher/d-abcdef}
`
	reg := mustLoad(t, doc, Options{})
	for _, tc := range []struct {
		event string
		want  string
	}{
		// Provider by name.
		{"token-refresher/a", "by-name,shares-a"},
		{acct + "token-refresher/a-AbC123", "by-name,shares-a"},
		{other + "token-refresher/a-AbC123", "by-name,shares-a"}, // a name has no account
		{acct + "token-refresher/a", "by-name,shares-a"},
		{"token-refresher/a-AbC123", ""}, // a name is never stripped: that is another secret
		{acct + "token-refresher/ab-AbC123", ""},
		{acct + "token-refresher/a-AbC12", ""}, // not a suffix: 5 characters
		{acct + "token-refresher/a-AbC12!", ""},
		// Provider by partial ARN.
		{acct + "token-refresher/b-AbC123", "by-partial"},
		{acct + "token-refresher/b", "by-partial"},
		{"token-refresher/b", "by-partial"},
		{other + "token-refresher/b-AbC123", ""},
		{region + "token-refresher/b-AbC123", ""},
		{"arn:aws-cn:secretsmanager:eu-west-1:123456789012:secret:token-refresher/b", ""},
		// Provider by full ARN.
		{acct + "token-refresher/c-Xy12Z9", "by-full"},
		{acct + "token-refresher/c", "by-full"},
		{"token-refresher/c", "by-full"},
		{acct + "token-refresher/c-Other1", ""}, // recreated secret, new suffix
		{"token-refresher/c-Xy12Z9", "by-full"}, // ambiguous: may be that secret's own name
		{other + "token-refresher/c-Xy12Z9", ""},
		// A name that looks like it ends in a suffix.
		{"token-refresher/d-abcdef", "suffix-like"},
		{acct + "token-refresher/d-abcdef-Q1w2E3", "suffix-like"},
		{"token-refresher/d", ""},
		// Not a secret at all.
		{"", ""},
		{"arn:aws:s3:::bucket", ""},
	} {
		t.Run(tc.event, func(t *testing.T) {
			var got []string
			for _, p := range reg.BySecret(tc.event) {
				got = append(got, p.Name)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("BySecret(%q) = %v, want %s", tc.event, got, tc.want)
			}
		})
	}
}

// TestBySecretAmbiguousPartialARN documents the one case that cannot be decided: a
// partial ARN ending in "-" and six alphanumerics matches both readings.
func TestBySecretAmbiguousPartialARN(t *testing.T) {
	doc := `providers:
  - {name: short, token_url: 'https://a.example/t', secret_id: app}
  - {name: long, token_url: 'https://a.example/t', secret_id: app-abc123}
`
	reg := mustLoad(t, doc, Options{})
	if got := reg.BySecret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-abc123"); len(got) != 2 {
		t.Errorf("got %d providers, want both", len(got))
	}
}

// TestFingerprint: the same configuration, however spelled, has one fingerprint;
// any change to a provider, or to the prefix, changes it.
func TestFingerprint(t *testing.T) {
	fp := func(doc string, opts Options) string { return mustLoad(t, doc, opts).Fingerprint() }
	base := fp(entryYAML(), Options{})
	if len(base) != 64 || fp(entryYAML("auth_method: client_secret_post", "request_format: form"), Options{}) != base {
		t.Fatalf("got a different fingerprint for defaults spelt out, want the same")
	}
	for _, changed := range []string{
		fp(entryYAML("refresh_before: 20m"), Options{}),
		fp(entryYAML("scope: a"), Options{}),
		fp(entryYAML("token_url: https://auth.example.com/oauth/token2"), Options{}),
		fp(entryYAML("headers: {X-A: b}"), Options{}),
		fp(entryYAML(), Options{ParameterPrefix: "/other/tokens"}),
	} {
		if changed == base {
			t.Errorf("got fingerprint %s after a change, want a different one", base)
		}
	}
}

// TestHeaderValueNotEchoed: headers are where API keys end up, so a refused header
// value is never quoted in the error.
func TestHeaderValueNotEchoed(t *testing.T) {
	_, err := load(t, entryYAML(`headers: {X-Api-Key: "k3y-v4lue-s3cr3t\n"}`), Options{})
	if err == nil || strings.Contains(err.Error(), "k3y-v4lue") || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("got %v, want a control-character error that does not echo the value", err)
	}
}

func TestLoadVerify(t *testing.T) {
	reg := mustLoad(t, entryYAML("verify: {url: 'https://api.example.com/v1/ping', method: HEAD, expect: [200, 204]}"), Options{})
	p, _ := reg.Lookup("p")
	if p.Verify == nil || p.Verify.URL.String() != "https://api.example.com/v1/ping" || p.Verify.Method != "HEAD" ||
		!reflect.DeepEqual(p.Verify.Expect, []int{200, 204}) {
		t.Fatalf("got verify %+v, want https://api.example.com/v1/ping, HEAD, [200 204]", p.Verify)
	}
	if p := mustLoad(t, entryYAML("verify: {url: 'http://127.0.0.1:9/ping'}"), Options{}).Providers()[0]; p.Verify.Method != "" || p.Verify.Expect != nil {
		t.Fatalf("got verify %+v, want no method and no expect", p.Verify)
	}
	for _, tc := range []struct{ line, field, msg string }{
		{"verify: https://x", "verify", "must be a mapping"},
		{"verify: {method: GET}", "verify.url", "required"},
		{"verify: {url: 'http://api.example.com/ping'}", "verify.url", "loopback"},
		{"verify: {url: 'https://a.example/p', method: get}", "verify.method", "capitals"},
		{"verify: {url: 'https://a.example/p', expect: [200, 999]}", "verify.expect", "HTTP statuses"},
		{"verify: {url: 'https://a.example/p', expect: 200}", "verify.expect", "HTTP statuses"},
		{"verify: {url: 'https://a.example/p', headers: {}}", "verify.headers", "unknown field"},
	} {
		_, err := load(t, entryYAML(tc.line), Options{})
		var fe *fieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want a problem with %s saying %q", tc.line, err, tc.field, tc.msg)
		}
	}
}

// TestLoadEach: a registry edited by hand after it was checked loads entry by entry:
// the entries that load are the registry, each one that does not is rejected with
// its own problems (a second entry of the same name too), and a problem of the file
// as a whole is still an error.
func TestLoadEach(t *testing.T) {
	good := func(name string) string {
		return "  - name: " + name + "\n    token_url: https://" + name + ".example/token\n    secret_id: s/" + name + "\n"
	}
	tests := []struct {
		name         string
		file         string
		wantLoaded   []string
		wantRejected []string // name, or #index when the entry has no usable name
		wantErr      bool
	}{
		{"all good", "providers:\n" + good("a") + good("b"), []string{"a", "b"}, nil, false},
		{"one bad field", "providers:\n" + good("a") + good("b") + "    refresh_before: soon\n" + good("c"), []string{"a", "c"}, []string{"b"}, false},
		{"unknown field and a second of one name", "providers:\n" + good("a") + "    colour: blue\n" + good("b") + good("b"), []string{"b"}, []string{"a", "b"}, false},
		{"no name", "providers:\n" + good("a") + "  - token_url: https://x.example/t\n    secret_id: s/x\n", []string{"a"}, []string{"#1"}, false},
		{"every entry bad", "providers:\n  - name: Bad\n    token_url: http://x.example/t\n    secret_id: s\n", nil, []string{"Bad"}, false},
		{"unknown top-level key", "colour: blue\nproviders:\n" + good("a"), nil, nil, true},
		{"syntax", "providers:\n  - name: a\n   token_url: x\n", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, rejected, err := LoadEach(strings.NewReader(tt.file), Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var loaded, bad []string
			for _, p := range reg.Providers() {
				loaded = append(loaded, p.Name)
			}
			for _, r := range rejected {
				name := r.Name
				if name == "" {
					name = fmt.Sprintf("#%d", r.Index)
				}
				bad = append(bad, name)
				if r.Err == nil || !strings.Contains(r.Err.Error(), "line") {
					t.Errorf("got rejected %s with %v, want its problems with their lines", name, r.Err)
				}
			}
			if !slices.Equal(loaded, tt.wantLoaded) || !slices.Equal(bad, tt.wantRejected) {
				t.Fatalf("got loaded %v, rejected %v; want %v, %v", loaded, bad, tt.wantLoaded, tt.wantRejected)
			}
		})
	}
}

// TestLoadClientAuthMethods: every method, with the key fields it allows, loads
// into the Endpoint and Provider as written; signing_key keeps the KMS KeyId.
func TestLoadClientAuthMethods(t *testing.T) {
	const arnKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		name string
		doc  string
		want Provider
	}{
		{"private_key_jwt with KMS alias", entryYAML("auth_method: private_key_jwt", "signing_key: kms:alias/okta-partner", "signing_alg: PS256", "key_id: k1", "assertion_audience: https://issuer.example"),
			Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.PrivateKeyJWT, SigningAlg: oauth.PS256, KeyID: "k1", AssertionAudience: "https://issuer.example"}, SigningKey: "alias/okta-partner"}},
		{"private_key_jwt with key ARN", entryYAML("auth_method: private_key_jwt", "signing_key: kms:"+arnKey),
			Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.PrivateKeyJWT}, SigningKey: arnKey}},
		{"private_key_jwt with key id", entryYAML("auth_method: private_key_jwt", "signing_key: kms:mrk-1234abcd12ab34cd56ef1234567890ab", "signing_alg: ES256"),
			Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.PrivateKeyJWT, SigningAlg: oauth.ES256}, SigningKey: "mrk-1234abcd12ab34cd56ef1234567890ab"}},
		{"private_key_jwt with alias ARN", entryYAML("auth_method: private_key_jwt", "signing_key: kms:arn:aws:kms:eu-west-1:123456789012:alias/p"),
			Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.PrivateKeyJWT}, SigningKey: "arn:aws:kms:eu-west-1:123456789012:alias/p"}},
		{"private_key_jwt with the secret's key", entryYAML("auth_method: private_key_jwt"), Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.PrivateKeyJWT}}},
		{"client_secret_jwt", entryYAML("auth_method: client_secret_jwt", "signing_alg: HS256"), Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.ClientSecretJWT, SigningAlg: oauth.HS256}}},
		{"tls_client_auth", entryYAML("auth_method: tls_client_auth"), Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.TLSClientAuth}}},
		{"self_signed_tls_client_auth", entryYAML("auth_method: self_signed_tls_client_auth"), Provider{Endpoint: oauth.Endpoint{AuthMethod: oauth.SelfSignedTLSClientAuth}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := load(t, tc.doc, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			p := reg.Providers()[0]
			got := [...]string{string(p.AuthMethod), string(p.SigningAlg), p.KeyID, p.AssertionAudience, p.SigningKey}
			want := [...]string{string(tc.want.AuthMethod), string(tc.want.SigningAlg), tc.want.KeyID, tc.want.AssertionAudience, tc.want.SigningKey}
			if got != want {
				t.Errorf("got method, alg, kid, aud, key %q, want %q", got, want)
			}
		})
	}
}

// TestLoadIssuer: an issuer stands in for token_url, the token endpoint left for
// discovery to find.
func TestLoadIssuer(t *testing.T) {
	reg, err := Load(strings.NewReader(entryYAML("-token_url", "issuer: https://auth.example.com/oauth2/default", "auth_method: private_key_jwt")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := reg.Providers()[0]
	if p.Issuer != "https://auth.example.com/oauth2/default" || p.TokenURL != nil {
		t.Errorf("got issuer %q, token URL %v; want the issuer and no token URL", p.Issuer, p.TokenURL)
	}
}
