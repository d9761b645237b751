package registry

import (
	"cmp"
	"errors"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/token-refresher/token-refresher/internal/discovery"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/secretid"
)

// entry is one provider entry as yaml decodes it; the checker does what yaml cannot.
type entry struct {
	Name            field[string]                   `yaml:"name"`
	TokenURL        field[string]                   `yaml:"token_url"`
	Issuer          field[string]                   `yaml:"issuer"`
	SecretID        field[string]                   `yaml:"secret_id"`
	AuthMethod      field[string]                   `yaml:"auth_method"`
	BasicEncoding   field[string]                   `yaml:"basic_auth_encoding"`
	RequestFormat   field[string]                   `yaml:"request_format"`
	Scope           field[string]                   `yaml:"scope"`
	Audience        field[string]                   `yaml:"audience"`
	ExtraParams     field[map[string]field[string]] `yaml:"extra_params"`
	Headers         field[map[string]field[string]] `yaml:"headers"`
	Response        field[response]                 `yaml:"response"`
	RefreshBefore   field[string]                   `yaml:"refresh_before"`
	MaxAge          field[string]                   `yaml:"max_age"`
	MaxLifetime     field[string]                   `yaml:"max_lifetime"`
	DefaultLifetime field[string]                   `yaml:"default_lifetime"`
	Parameter       field[string]                   `yaml:"parameter"`
	Verify          field[verify]                   `yaml:"verify"`
	SigningKey      field[string]                   `yaml:"signing_key"`
	SigningAlg      field[string]                   `yaml:"signing_alg"`
	KeyID           field[string]                   `yaml:"key_id"`
	AssertionAud    field[string]                   `yaml:"assertion_audience"`
}

type response struct {
	AccessToken field[string] `yaml:"access_token"`
	TokenType   field[string] `yaml:"token_type"`
	ExpiresIn   field[string] `yaml:"expires_in"`
	Scope       field[string] `yaml:"scope"`
}

type verify struct {
	URL    field[string] `yaml:"url"`
	Method field[string] `yaml:"method"`
	Expect field[[]int]  `yaml:"expect"`
}

// checker checks one entry; its problems go to the loader, after the others'.
type checker struct {
	l         *loader
	idx, line int
	name      string // as written, for messages; it may be invalid
	dupName   bool   // an earlier entry has the same name, so messages add the index
	start     int    // where its problems begin in l.errs
}

func (c *checker) fail(field string, line int, err error) {
	c.l.errs = append(c.l.errs, &fieldError{Provider: c.name, Index: c.idx, Field: field, Line: cmp.Or(line, c.line), Err: err, dupName: c.dupName})
}

// get returns a field's value, its line, and whether it is set and of type T, reporting
// a required field that is unset, unknown and duplicate keys below it as name.key,
// and any other of yaml's errors as a value that must be want.
func get[T any](c *checker, name string, f field[T], want string) (T, int, bool) {
	if f.unset() {
		if slices.Contains([]string{"name", "secret_id"}, name) {
			c.fail(name, 0, errRequired)
		}
		return f.v, 0, false
	}
	wrong := false
	problems(f.err, func(line int, key string, err error) {
		switch {
		case key != "" || want == "":
			c.fail(strings.Trim(name+"."+key, "."), line, err)
		case !wrong:
			wrong = true
			c.fail(name, f.n.Line, detail(errInvalid, "must be %s, not %s", want, kindName(&f.n)))
		}
	})
	return f.v, f.n.Line, f.err == nil
}

// parse converts a string field that is set with conv, reporting conv's error.
func parse[T any](c *checker, name string, f field[string], conv func(string) (T, error)) (v T) {
	if s, line, ok := get(c, name, f, "a string"); ok {
		var err error
		if v, err = conv(s); err != nil {
			c.fail(name, line, err)
		}
	}
	return v
}

// provider checks one entry of the providers list and adds it if it has no problem.
func (l *loader) provider(idx int, n *yaml.Node) {
	n = resolve(n)
	c := &checker{l: l, idx: idx, line: n.Line, start: len(l.errs)}
	defer func() { // in line order, as a reader walks the file
		slices.SortStableFunc(l.errs[c.start:], func(a, b error) int { return cmp.Compare(a.(*fieldError).Line, b.(*fieldError).Line) })
	}()
	if n.Kind != yaml.MappingNode {
		c.fail("", n.Line, detail(errInvalid, "must be a mapping of fields, not %s", kindName(n)))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i], resolve(n.Content[i+1]); {
		case k.ShortTag() == "!!merge":
			c.fail(k.Value, k.Line, errUnknownField) // a merge would hide which provider sets what
		case k.Value == "name" && c.name == "" && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null":
			c.name = v.Value // for messages, even when yaml cannot decode the entry
			_, c.dupName = l.names[c.name]
		}
	}
	var e field[entry]
	if e.UnmarshalYAML(n); e.err != nil {
		get(c, "", e, "")
		if errors.Is(errors.Join(l.errs[c.start:]...), errDuplicateKey) {
			return // yaml decodes nothing of a mapping with a duplicate key
		}
	}
	if p, secret, ok := c.check(&e.v); ok {
		l.providers = append(l.providers, p)
		l.secrets = append(l.secrets, secret)
	}
}

// check turns the decoded fields into a Provider, reporting every problem.
func (c *checker) check(e *entry) (p Provider, secret secretid.ID, ok bool) {
	p.Name = parse(c, "name", e.Name, func(s string) (string, error) {
		first, dup := c.l.names[s]
		switch {
		case len(s) > 64:
			return "", detail(errInvalid, "longer than 64 characters")
		case !validName(s):
			return "", detail(errInvalid, "%q: use only a-z, 0-9, _ and - (the name becomes part of the SSM parameter name)", s)
		case dup:
			return "", detail(errDuplicate, "%q is also the name of providers[%d]", s, first)
		}
		c.l.names[s] = c.idx
		return s, nil
	})
	p.TokenURL = parse(c, "token_url", e.TokenURL, parseTokenURL)
	p.Issuer = parse(c, "issuer", e.Issuer, func(s string) (string, error) {
		u, err := discovery.CheckIssuer(s)
		if err != nil {
			return "", detail(errInvalid, "%v", err)
		}
		return u.String(), nil
	})
	// Exactly one says where the token endpoint is.
	switch {
	case e.TokenURL.unset() && e.Issuer.unset():
		c.fail("token_url", 0, detail(errRequired, "required (or issuer, to discover the token endpoint)"))
	case !e.TokenURL.unset() && !e.Issuer.unset():
		c.fail("issuer", e.Issuer.n.Line, detail(errInvalid, "give token_url or issuer, not both"))
	}
	p.SecretID, secret = e.SecretID.v, parse(c, "secret_id", e.SecretID, func(s string) (secretid.ID, error) {
		id, err := secretid.Parse(s)
		if err != nil {
			return id, detail(errInvalid, "%v", err)
		}
		return id, nil
	})
	p.AuthMethod = cmp.Or(parse(c, "auth_method", e.AuthMethod, oneOf(oauth.AuthMethods()...)), oauth.ClientSecretPost)
	p.BasicEncoding = cmp.Or(parse(c, "basic_auth_encoding", e.BasicEncoding, oneOf(oauth.BasicForm, oauth.BasicRaw)), oauth.BasicForm)
	// "raw" only changes a Basic header, so with another method the author likely
	// believes Basic is in use. "form" is the default and harmless everywhere.
	if p.BasicEncoding == oauth.BasicRaw && p.AuthMethod != oauth.ClientSecretBasic {
		c.fail("basic_auth_encoding", e.BasicEncoding.n.Line, detail(errInvalid, "raw has no effect with auth_method %s; did you mean auth_method: client_secret_basic?", p.AuthMethod))
	}
	c.keys(e, &p)
	p.RequestFormat = cmp.Or(parse(c, "request_format", e.RequestFormat, oneOf(oauth.FormRequest, oauth.JSONRequest)), oauth.FormRequest)
	p.Scope = parse(c, "scope", e.Scope, func(s string) (string, error) {
		if err := oauth.CheckScope(s); err != nil {
			return "", detail(errInvalid, "%v (use >- rather than | for a multi-line scope)", err)
		}
		return s, nil
	})
	p.Audience = parse(c, "audience", e.Audience, func(s string) (string, error) {
		if hasControl(s) {
			return "", detail(errInvalid, "contains a control character (a block scalar's newline?)")
		}
		return s, nil
	})
	p.ExtraParams = c.stringMap("extra_params", e.ExtraParams, func(k, _ string) error {
		if _, reserved := oauth.ReservedParam(k); reserved {
			return detail(errReserved, "%s is reserved: %s", k, cmp.Or(reservedHints[k], "the grant is always client_credentials"))
		}
		return nil
	})
	seen := map[string]string{} // header names are case-insensitive, so yaml's duplicate check misses some
	p.Headers = c.stringMap("headers", e.Headers, func(k, v string) error {
		lower := strings.ToLower(k)
		_, reserved := oauth.ReservedHeader(k)
		switch {
		case !validToken(k):
			return detail(errInvalid, "%q is not a valid header name", k)
		case reserved:
			return detail(errReserved, "%s is reserved: %s", k, cmp.Or(reservedHints[lower], "the HTTP client sets it"))
		case hasControl(v):
			return detail(errInvalid, "value contains a control character") // not echoed: API keys live here
		case seen[lower] != "":
			return detail(errDuplicateKey, "same header as %q", seen[lower])
		}
		seen[lower] = k
		return nil
	})
	p.Response = c.response(e.Response)
	p.RefreshBefore = parse(c, "refresh_before", e.RefreshBefore, parseDuration)
	p.MaxAge = parse(c, "max_age", e.MaxAge, parseDuration)
	p.MaxLifetime = cmp.Or(parse(c, "max_lifetime", e.MaxLifetime, parseDuration), defaultMaxLifetime)
	p.DefaultLifetime = parse(c, "default_lifetime", e.DefaultLifetime, parseDuration)
	p.Parameter = c.parameter(e.Parameter, p.Name)
	p.Verify = c.verify(e.Verify)
	return p, secret, len(c.l.errs) == c.start
}

// oneOf accepts any of want.
func oneOf[T ~string](want ...T) func(string) (T, error) {
	return func(s string) (T, error) {
		if !slices.Contains(want, T(s)) {
			names := make([]string, len(want))
			for i, w := range want {
				names[i] = string(w)
			}
			last := len(names) - 1
			return "", detail(errInvalid, "%q: want %s or %s", s, strings.Join(names[:last], ", "), names[last])
		}
		return T(s), nil
	}
}

// reservedHints say where a body field or header the client sets comes from instead.
var reservedHints = map[string]string{
	"client_id": "it comes from secret_id", "client_secret": "it comes from secret_id",
	"scope": "use the scope field", "audience": "use the audience field",
	"authorization": "the client sets it for client_secret_basic", "host": "it comes from token_url",
	"content-type": "the client sets it from request_format",
}

// stringMap reads a mapping of strings, keeping what check accepts; nil when unset.
func (c *checker) stringMap(name string, f field[map[string]field[string]], check func(k, v string) error) map[string]string {
	m, _, ok := get(c, name, f, "a mapping of strings")
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[a].n.Line, m[b].n.Line), cmp.Compare(m[a].n.Column, m[b].n.Column), strings.Compare(a, b))
	}) {
		v := m[k]
		if k == "" {
			c.fail(name, f.n.Line, detail(errInvalid, "keys must be non-empty strings"))
		} else if v.n.Kind != yaml.ScalarNode || v.err != nil {
			c.fail(name+"."+k, cmp.Or(v.n.Line, f.n.Line), detail(errInvalid, "must be a string, not %s (quote \"\" for an empty value)", kindName(&v.n)))
		} else if err := check(k, v.v); err != nil {
			c.fail(name+"."+k, v.n.Line, err)
		} else {
			out[k] = v.v
		}
	}
	return out
}

func (c *checker) response(f field[response]) oauth.ResponseFields {
	r, _, _ := get(c, "response", f, "a mapping")
	pointer := func(name string, f field[string]) string { // unset: the client finds the field unaided
		return parse(c, "response."+name, f, func(s string) (string, error) { _, err := oauth.ParsePointer(s); return s, err })
	}
	return oauth.ResponseFields{AccessToken: pointer("access_token", r.AccessToken), TokenType: pointer("token_type", r.TokenType),
		ExpiresIn: pointer("expires_in", r.ExpiresIn), Scope: pointer("scope", r.Scope)}
}

// verify reads the verify mapping: url (required), method and expect.
func (c *checker) verify(f field[verify]) *oauth.Check {
	v, _, ok := get(c, "verify", f, "a mapping with url, and optionally method and expect")
	n, chk := len(c.l.errs), &oauth.Check{Method: v.Method.v, Expect: v.Expect.v}
	if ok && v.URL.unset() {
		c.fail("verify.url", f.n.Line, errRequired)
	}
	chk.URL = parse(c, "verify.url", v.URL, parseTokenURL)
	if s, line, ok := get(c, "verify.method", v.Method, "a string"); ok && (!validToken(s) || strings.ToUpper(s) != s) {
		c.fail("verify.method", line, detail(errInvalid, "must be an HTTP method in capitals, such as GET or HEAD"))
	}
	const statuses = "a list of HTTP statuses, such as [200, 204]"
	if codes, line, ok := get(c, "verify.expect", v.Expect, statuses); ok &&
		(len(codes) == 0 || slices.ContainsFunc(codes, func(c int) bool { return c < 100 || c > 599 })) {
		c.fail("verify.expect", line, detail(errInvalid, "must be %s", statuses))
	}
	if !ok || len(c.l.errs) > n {
		return nil
	}
	return chk
}

func (c *checker) parameter(f field[string], name string) string {
	s := parse(c, "parameter", f, func(s string) (string, error) {
		if err := checkParameterName(s); err != nil {
			return "", err
		} else if strings.HasPrefix(s, c.l.prefix+"/") {
			return s, nil
		}
		return "", detail(errOutsidePrefix, "%q is not under the parameter prefix %s/: the function's IAM policy and its batched GetParametersByPath reads cover only that path", s, c.l.prefix)
	})
	line := f.n.Line
	if f.unset() && name != "" { // else the name's own error says enough
		s, line = c.l.prefix+"/"+name, c.line
		if err := checkParameterName(s); err != nil {
			c.fail("parameter", line, detail(errInvalid, "default parameter %s: %v; set a shorter name or parameter", s, err))
			return ""
		}
	}
	if s == "" {
		return ""
	}
	if other, dup := c.l.params[s]; dup {
		c.fail("parameter", line, detail(errDuplicate, "%s is also the parameter of %s; the two would overwrite each other's token", s, other))
		return ""
	}
	c.l.params[s] = (&fieldError{Provider: c.name, Index: c.idx, dupName: c.dupName}).label()
	return s
}

// validName: [a-z0-9_-]+, safe both in an SSM parameter name and as a metric dimension.
var validName = regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString

// validToken is RFC 9110's token, the syntax of a header name.
var validToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$").MatchString

// hasControl: ASCII controls but tab, never valid in a header and a YAML accident elsewhere.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 && c != '\t' || c == 0x7F })
}

// parseTokenURL applies the token client's rule for where credentials may be sent.
func parseTokenURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return nil, detail(errInvalid, "not a valid URL: %v", ue.Err)
	}
	if err := oauth.CheckTokenURL(u); err != nil {
		return nil, detail(errInvalid, "%v", err)
	}
	return u, nil
}

// parseDuration is time.ParseDuration plus whole days ("30d"), because lifetimes run
// to a year and "8760h" is easy to get wrong. "1d12h" is written "36h".
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && strings.Trim(days, "0123456789") == "" {
		n, perr := strconv.ParseInt(days, 10, 64)
		if perr != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, detail(errInvalid, "duration %q is out of range", s)
		}
		d, err = time.Duration(n)*24*time.Hour, nil
	}
	switch {
	case err != nil:
		return 0, detail(errInvalid, "invalid duration %q (want a Go duration such as 90s, 15m or 12h, or whole days such as 30d)", s)
	case d <= 0:
		return 0, detail(errInvalid, "duration %q must be positive", s)
	}
	return d, nil
}

var notInParameter = regexp.MustCompile(`[^A-Za-z0-9_./-]`)

// checkParameterName applies SSM's naming rules, so a bad name fails at load time.
func checkParameterName(s string) error {
	switch lower := strings.ToLower(s); {
	case !strings.HasPrefix(s, "/"):
		return detail(errInvalid, "%q must start with \"/\"", s)
	case len(s) > 1011:
		return detail(errInvalid, "longer than 1011 characters")
	case strings.Contains(s, "//"):
		return detail(errInvalid, "%q contains an empty path segment (\"//\")", s)
	case strings.HasSuffix(s, "/"):
		return detail(errInvalid, "%q must not end with \"/\"", s)
	case strings.HasPrefix(lower, "/aws") || strings.HasPrefix(lower, "/ssm"):
		return detail(errInvalid, "%q: names starting with /aws or /ssm are reserved by AWS", s)
	case notInParameter.MatchString(s):
		return detail(errInvalid, "%q: %q is not allowed (only letters, digits and _.-/)", s, notInParameter.FindString(s))
	case strings.Count(s, "/") > 15:
		return detail(errInvalid, "%q is more than 15 levels deep, SSM's limit", s)
	}
	return nil
}
