package registry

import (
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// kmsScheme prefixes a signing_key held in AWS KMS, the only place one may be held
// today; the prefix leaves room for others.
const kmsScheme = "kms:"

// keys checks the fields of the assertion methods: signing_key only with
// private_key_jwt, signing_alg as the method allows, key_id and assertion_audience
// only with a method that signs an assertion.
func (c *checker) keys(e *entry, p *Provider) {
	m := p.AuthMethod
	only := func(name string, f field[string], ok bool, methods string) {
		if !f.unset() && !ok {
			c.fail(name, f.n.Line, detail(errInvalid, "only with auth_method %s, not %s", methods, m))
		}
	}
	only("signing_key", e.SigningKey, m == oauth.PrivateKeyJWT, string(oauth.PrivateKeyJWT))
	only("signing_alg", e.SigningAlg, m.SignsAssertion(), "private_key_jwt or client_secret_jwt")
	only("key_id", e.KeyID, m.SignsAssertion(), "private_key_jwt or client_secret_jwt")
	only("assertion_audience", e.AssertionAud, m.SignsAssertion(), "private_key_jwt or client_secret_jwt")
	if !m.SignsAssertion() {
		return
	}
	p.SigningKey = parse(c, "signing_key", e.SigningKey, parseSigningKey)
	algs := []oauth.SigningAlg{oauth.RS256, oauth.PS256, oauth.ES256}
	if m == oauth.ClientSecretJWT {
		algs = []oauth.SigningAlg{oauth.HS256}
	}
	p.SigningAlg = parse(c, "signing_alg", e.SigningAlg, oneOf(algs...))
	printable := func(s string) (string, error) {
		if hasControl(s) {
			return "", detail(errInvalid, "contains a control character")
		}
		return s, nil
	}
	p.KeyID = parse(c, "key_id", e.KeyID, printable)
	p.AssertionAudience = parse(c, "assertion_audience", e.AssertionAud, printable)
}

var (
	kmsKeyID = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	kmsAlias = regexp.MustCompile(`^alias/[A-Za-z0-9/_-]{1,250}$`)
)

// parseSigningKey reads kms:<key id | alias/name | key or alias ARN> and returns
// what follows kms:, the KeyId kms:Sign takes.
func parseSigningKey(s string) (string, error) {
	id, ok := strings.CutPrefix(s, kmsScheme)
	if !ok {
		return "", detail(errInvalid, "%q: want kms: and a KMS key id, alias/name, or key or alias ARN", s)
	}
	if err := checkKMSKey(id); err != nil {
		return "", detail(errInvalid, "%q: %s", s, err.Error())
	}
	return id, nil
}

type keyError string

func (e keyError) Error() string { return string(e) }

// checkKMSKey applies KMS's syntax for a KeyId: a key id (a UUID, or mrk- and 32
// hex digits for a multi-region key), alias/name, or the ARN of either.
func checkKMSKey(id string) error {
	if strings.HasPrefix(id, "arn:") {
		a, err := arn.Parse(id)
		switch {
		case err != nil:
			return keyError("not a valid ARN")
		case a.Service != "kms":
			return keyError("an ARN of " + a.Service + ", not of kms")
		case a.Region == "" || a.AccountID == "":
			return keyError("a KMS ARN names its region and account")
		}
		if rest, ok := strings.CutPrefix(a.Resource, "key/"); ok && kmsKeyID.MatchString(rest) {
			return nil
		}
		if strings.HasPrefix(a.Resource, "alias/") {
			return checkAlias(a.Resource)
		}
		return keyError("a KMS ARN ends in key/<key id> or alias/<name>")
	}
	if strings.HasPrefix(id, "alias/") {
		return checkAlias(id)
	}
	if !kmsKeyID.MatchString(id) {
		return keyError("not a KMS key id (a UUID, or mrk- and 32 hex digits), alias/name or ARN")
	}
	return nil
}

func checkAlias(a string) error {
	switch {
	case strings.HasPrefix(a, "alias/aws/"):
		return keyError("alias/aws/ names keys AWS manages, which are symmetric and cannot sign")
	case !kmsAlias.MatchString(a):
		return keyError("an alias is alias/ and up to 250 of A-Z a-z 0-9 / _ -")
	}
	return nil
}
