package registry

import (
	"cmp"
	"errors"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/secretid"
)

// entry is one provider entry as yaml decodes it. yaml reports unknown and
// duplicate keys; the checks below do what yaml cannot.
type entry struct {
	Name            field[string]                   `yaml:"name"`
	TokenURL        field[string]                   `yaml:"token_url"`
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
}

// response holds the JSON pointers of a token answer's fields.
type response struct {
	AccessToken field[string] `yaml:"access_token"`
	TokenType   field[string] `yaml:"token_type"`
	ExpiresIn   field[string] `yaml:"expires_in"`
	Scope       field[string] `yaml:"scope"`
}

// verify is the call a new token must pass.
type verify struct {
	URL    field[string] `yaml:"url"`
	Method field[string] `yaml:"method"`
	Expect field[[]int]  `yaml:"expect"`
}

// checker checks one entry and collects its problems.
type checker struct {
	l       *loader
	idx     int
	line    int
	name    string // as written, for messages; it may be invalid
	dupName bool   // an earlier entry has the same name, so messages add the index
	errs    []*FieldError
}

func (c *checker) fail(field string, line int, err error) {
	c.errs = append(c.errs, &FieldError{Provider: c.name, Index: c.idx, Field: field, Line: cmp.Or(line, c.line), Err: err, dupName: c.dupName})
}

// failYAML reports yaml's errors for a field, naming keys below it as field.key,
// and a value of the wrong type as "must be want".
func (c *checker) failYAML(field string, n *yaml.Node, err error, want string) {
	for _, p := range problems(err) {
		switch {
		case p.key != "":
			c.fail(strings.TrimPrefix(field+"."+p.key, "."), p.line, p.err)
		case n != nil && want != "":
			c.fail(field, n.Line, detail(ErrInvalid, "must be %s, not %s", want, kindName(n)))
			return
		default:
			c.fail(field, p.line, p.err)
		}
	}
}

// get returns a field that is set and has the type wanted.
func get[T any](c *checker, name string, f field[T], want string) (T, int, bool) {
	if f.unset() {
		var zero T
		return zero, f.line(), false
	}
	if f.err != nil {
		c.failYAML(name, f.n, f.err, want)
	}
	return f.v, f.line(), f.err == nil
}

func (c *checker) str(name string, f field[string]) (string, int, bool) {
	return get(c, name, f, "a string")
}

// required is str that reports an unset field.
func (c *checker) required(name string, f field[string]) (string, int, bool) {
	s, line, ok := c.str(name, f)
	if f.unset() {
		c.fail(name, line, ErrRequired)
	}
	return s, line, ok
}

// check checks one entry of the providers list and, when it has no problem, adds
// it to the registry. Problems are reported in line order, which is how a reader
// walks the file.
func (l *loader) provider(idx int, n *yaml.Node) {
	n = resolve(n)
	c := &checker{l: l, idx: idx, line: n.Line}
	defer func() {
		slices.SortStableFunc(c.errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
		for _, fe := range c.errs {
			l.errs = append(l.errs, fe)
		}
	}()
	if n.Kind != yaml.MappingNode {
		c.fail("", n.Line, detail(ErrInvalid, "must be a mapping of fields, not %s", kindName(n)))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i], resolve(n.Content[i+1]); {
		case k.ShortTag() == "!!merge":
			c.fail(k.Value, k.Line, ErrUnknownField) // a merge would hide which provider sets what
		case k.Value == "name" && c.name == "" && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null":
			c.name = v.Value // for messages, even when yaml cannot decode the entry
			_, c.dupName = l.names[c.name]
		}
	}
	var e entry
	err := n.Load(&e, yaml.WithKnownFields())
	if err != nil {
		c.failYAML("", nil, err, "")
		if slices.ContainsFunc(c.errs, func(fe *FieldError) bool { return errors.Is(fe, ErrDuplicateKey) }) {
			return // yaml decodes nothing of a mapping with a duplicate key
		}
	}
	if p, secret, ok := c.check(&e); ok {
		l.providers = append(l.providers, p)
		l.secrets = append(l.secrets, secret)
	}
}

// check turns the decoded fields into a Provider, reporting every problem.
func (c *checker) check(e *entry) (Provider, secretid.ID, bool) {
	p := Provider{Endpoint: oauth.Endpoint{
		AuthMethod: oauth.ClientSecretPost, BasicEncoding: oauth.BasicForm, RequestFormat: oauth.FormRequest,
	}}
	nameOK := c.checkName(&p, e.Name)
	if s, line, ok := c.required("token_url", e.TokenURL); ok {
		u, err := parseTokenURL(s)
		if err != nil {
			c.fail("token_url", line, err)
		}
		p.TokenURL = u
	}
	var secret secretid.ID
	if s, line, ok := c.required("secret_id", e.SecretID); ok {
		id, err := secretid.Parse(s)
		if err != nil {
			c.fail("secret_id", line, detail(ErrInvalid, "%v", err))
		}
		p.SecretID, secret = s, id
	}
	c.checkDialect(&p, e)
	if s, line, ok := c.str("scope", e.Scope); ok {
		if err := oauth.CheckScope(s); err != nil {
			c.fail("scope", line, detail(ErrInvalid, "%v (use >- rather than | for a multi-line scope)", err))
		}
		p.Scope = s
	}
	if s, line, ok := c.str("audience", e.Audience); ok {
		if hasControl(s) {
			c.fail("audience", line, detail(ErrInvalid, "contains a control character (a block scalar's newline?)"))
		}
		p.Audience = s
	}
	p.ExtraParams = c.extraParams(e.ExtraParams)
	p.Headers = c.headers(e.Headers)
	p.Response = c.response(e.Response)
	p.RefreshBefore = c.duration("refresh_before", e.RefreshBefore)
	p.MaxAge = c.duration("max_age", e.MaxAge)
	p.MaxLifetime = cmp.Or(c.duration("max_lifetime", e.MaxLifetime), DefaultMaxLifetime)
	p.DefaultLifetime = c.duration("default_lifetime", e.DefaultLifetime)
	p.Parameter = c.parameter(e.Parameter, p.Name, nameOK)
	p.Verify = c.verify(e.Verify)
	return p, secret, len(c.errs) == 0
}

func (c *checker) checkName(p *Provider, f field[string]) bool {
	name, line, ok := c.required("name", f)
	switch {
	case !ok:
		return false
	case len(name) > 64:
		c.fail("name", line, detail(ErrInvalid, "longer than 64 characters"))
		return false
	case !validName(name):
		c.fail("name", line, detail(ErrInvalid, "%q: use only a-z, 0-9, _ and - (the name becomes part of the SSM parameter name)", name))
		return false
	}
	if first, dup := c.l.names[name]; dup {
		c.fail("name", line, detail(ErrDuplicate, "%q is also the name of providers[%d]", name, first))
		return false
	}
	c.l.names[name] = c.idx
	p.Name = name
	return true
}

// oneOf reads an enumerated field: its value, or def when it is unset or not one of a and b.
func oneOf[T ~string](c *checker, name string, f field[string], def, a, b T) (T, int) {
	s, line, ok := c.str(name, f)
	if ok && T(s) != a && T(s) != b {
		c.fail(name, line, detail(ErrInvalid, "%q: want %s or %s", s, a, b))
		return def, line
	}
	return cmp.Or(T(s), def), line
}

func (c *checker) checkDialect(p *Provider, e *entry) {
	p.AuthMethod, _ = oneOf(c, "auth_method", e.AuthMethod, p.AuthMethod, oauth.ClientSecretPost, oauth.ClientSecretBasic)
	var line int
	p.BasicEncoding, line = oneOf(c, "basic_auth_encoding", e.BasicEncoding, p.BasicEncoding, oauth.BasicForm, oauth.BasicRaw)
	// "raw" only changes how a Basic header is built; with client_secret_post it
	// would do nothing, so it is a sign the author believes Basic is in use.
	// "form" is the default and harmless, so it is allowed everywhere.
	if p.BasicEncoding == oauth.BasicRaw && p.AuthMethod == oauth.ClientSecretPost {
		c.fail("basic_auth_encoding", line, detail(ErrInvalid, "raw has no effect with auth_method client_secret_post; did you mean auth_method: client_secret_basic?"))
	}
	p.RequestFormat, _ = oneOf(c, "request_format", e.RequestFormat, p.RequestFormat, oauth.FormRequest, oauth.JSONRequest)
}

// reservedParamHint says, in the registry's words, where a reserved body field's
// value comes from instead.
func reservedParamHint(name string) string {
	switch name {
	case "client_id", "client_secret":
		return "it comes from secret_id"
	case "scope", "audience":
		return "use the " + name + " field"
	default:
		return "the grant is always client_credentials"
	}
}

func (c *checker) extraParams(f field[map[string]field[string]]) map[string]string {
	out := c.stringMap("extra_params", f)
	for k := range out {
		if _, reserved := oauth.ReservedParam(k); reserved {
			c.fail("extra_params."+k, f.v[k].line(), detail(ErrReserved, "%s is reserved: %s", k, reservedParamHint(k)))
			delete(out, k)
		}
	}
	return out
}

// reservedHeaderHint says, in the registry's words, why a header cannot be set.
func reservedHeaderHint(lower string) string {
	switch lower {
	case "authorization":
		return "the client sets it for client_secret_basic"
	case "content-type":
		return "the client sets it from request_format"
	case "host":
		return "it comes from token_url"
	default:
		return "the HTTP client sets it"
	}
}

func (c *checker) headers(f field[map[string]field[string]]) map[string]string {
	out := c.stringMap("headers", f)
	seen := map[string]string{}
	for _, k := range inOrder(f.v) {
		if _, ok := out[k]; !ok {
			continue
		}
		name, line, lower := "headers."+k, f.v[k].line(), strings.ToLower(k)
		_, reserved := oauth.ReservedHeader(k)
		switch {
		case !validToken(k):
			c.fail(name, line, detail(ErrInvalid, "%q is not a valid header name", k))
		case reserved:
			c.fail(name, line, detail(ErrReserved, "%s is reserved: %s", k, reservedHeaderHint(lower)))
		case hasControl(out[k]):
			// The value is not echoed: headers are where API keys end up.
			c.fail(name, line, detail(ErrInvalid, "value contains a control character"))
		case seen[lower] != "":
			// Header names are case-insensitive, so yaml's own duplicate check misses these.
			c.fail(name, line, detail(ErrDuplicateKey, "same header as %q", seen[lower]))
		default:
			seen[lower] = k
			continue
		}
		delete(out, k)
	}
	return out
}

// stringMap reads a mapping of strings, reporting empty keys and values that are
// not strings under "field.key". It returns nil when the field is unset.
func (c *checker) stringMap(name string, f field[map[string]field[string]]) map[string]string {
	m, _, ok := get(c, name, f, "a mapping of strings")
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range inOrder(m) {
		v := m[k]
		switch {
		case k == "":
			c.fail(name, f.line(), detail(ErrInvalid, "keys must be non-empty strings"))
		case v.n == nil || v.err != nil || v.n.ShortTag() == "!!null":
			kind := "null"
			if v.n != nil {
				kind = kindName(v.n)
			}
			c.fail(name+"."+k, cmp.Or(v.line(), f.line()), detail(ErrInvalid, "must be a string, not %s (quote \"\" for an empty value)", kind))
		default:
			out[k] = v.v
		}
	}
	return out
}

// inOrder returns the keys of a decoded mapping in the order they are written.
func inOrder(m map[string]field[string]) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		pa, pb := m[a].n, m[b].n
		if pa == nil || pb == nil {
			return strings.Compare(a, b)
		}
		return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Column, pb.Column), strings.Compare(a, b))
	})
}

func (c *checker) response(f field[response]) oauth.ResponseFields {
	r, _, ok := get(c, "response", f, "a mapping")
	if !ok {
		return oauth.ResponseFields{}
	}
	pointer := func(name string, f field[string]) string {
		s, line, ok := c.str("response."+name, f) // unset: find the field unaided
		if _, err := oauth.ParsePointer(s); ok && err != nil {
			c.fail("response."+name, line, detail(ErrInvalidPointer, "%v", err))
		}
		return s
	}
	return oauth.ResponseFields{AccessToken: pointer("access_token", r.AccessToken), TokenType: pointer("token_type", r.TokenType),
		ExpiresIn: pointer("expires_in", r.ExpiresIn), Scope: pointer("scope", r.Scope)}
}

// verify reads the verify mapping: url (required), method and expect.
func (c *checker) verify(f field[verify]) *oauth.Check {
	v, _, ok := get(c, "verify", f, "a mapping with url, and optionally method and expect")
	if !ok {
		return nil
	}
	n := len(c.errs)
	chk := &oauth.Check{}
	if s, line, ok := c.str("verify.url", v.URL); ok {
		u, err := parseTokenURL(s)
		if err != nil {
			c.fail("verify.url", line, err)
		}
		chk.URL = u
	} else if v.URL.unset() {
		c.fail("verify.url", f.line(), ErrRequired)
	}
	if s, line, ok := c.str("verify.method", v.Method); ok && (!validToken(s) || strings.ToUpper(s) != s) {
		c.fail("verify.method", line, detail(ErrInvalid, "must be an HTTP method in capitals, such as GET or HEAD"))
	} else {
		chk.Method = s
	}
	if codes, line, ok := get(c, "verify.expect", v.Expect, ""); ok && (len(codes) == 0 ||
		slices.ContainsFunc(codes, func(c int) bool { return c < 100 || c > 599 })) || !ok && v.Expect.err != nil {
		c.fail("verify.expect", line, detail(ErrInvalid, "must be a list of HTTP statuses, such as [200, 204]"))
	} else {
		chk.Expect = codes
	}
	if len(c.errs) > n {
		return nil
	}
	return chk
}

func (c *checker) duration(name string, f field[string]) time.Duration {
	s, line, ok := c.str(name, f)
	if !ok {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil {
		c.fail(name, line, err)
	}
	return d
}

func (c *checker) parameter(f field[string], name string, nameOK bool) string {
	prefix := c.l.prefix
	s, line, ok := c.str("parameter", f)
	if !ok {
		if !nameOK || f.err != nil {
			return "" // the name's own error says enough
		}
		s, line = prefix+"/"+name, c.line
		if err := checkParameterName(s); err != nil {
			c.fail("parameter", line, detail(ErrInvalid, "default parameter %s: %v; set a shorter name or parameter", s, err))
			return ""
		}
	} else {
		if err := checkParameterName(s); err != nil {
			c.fail("parameter", line, err)
			return ""
		}
		if !strings.HasPrefix(s, prefix+"/") {
			c.fail("parameter", line, detail(ErrOutsidePrefix,
				"%q is not under the parameter prefix %s/: the function's IAM policy and its batched GetParametersByPath reads cover only that path", s, prefix))
			return ""
		}
	}
	if other, dup := c.l.params[s]; dup {
		c.fail("parameter", line, detail(ErrDuplicate, "%s is also the parameter of %s; the two would overwrite each other's token", s, other))
		return ""
	}
	c.l.params[s] = (&FieldError{Provider: c.name, Index: c.idx, dupName: c.dupName}).label()
	return s
}

// validName: [a-z0-9_-]+. The name is a path segment of the SSM parameter and a
// metric dimension, so it is kept to characters that are safe in both.
func validName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// parseTokenURL parses token_url and applies the token client's own rule for where
// client credentials may be sent, so a bad URL fails at load time.
func parseTokenURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, detail(ErrInvalid, "not a valid URL: %v", err)
	}
	if err := oauth.CheckTokenURL(u); err != nil {
		return nil, detail(ErrInvalid, "%v", err)
	}
	return u, nil
}

// hasControl reports ASCII control characters other than tab, which cannot appear in
// a header value and in other fields are almost surely a YAML accident.
func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 && c != '\t' || c == 0x7F {
			return true
		}
	}
	return false
}

// validToken is RFC 9110's token, the syntax of a header name.
func validToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') && !strings.ContainsRune("!#$%&'*+-.^_`|~", c) {
			return false
		}
	}
	return s != ""
}

// parseDuration is time.ParseDuration plus whole days ("30d"), because the lifetimes
// providers document run to a year and "8760h" is easy to get wrong. Days cannot be
// combined with other units; "1d12h" is written "36h".
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && strings.Trim(days, "0123456789") == "" {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, detail(ErrInvalid, "duration %q is out of range", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, detail(ErrInvalid, "invalid duration %q (want a Go duration such as 90s, 15m or 12h, or whole days such as 30d)", s)
		}
	}
	if d <= 0 {
		return 0, detail(ErrInvalid, "duration %q must be positive", s)
	}
	return d, nil
}

// checkParameterName applies SSM's rules for hierarchical parameter names, so a bad
// name fails at load time instead of at the first PutParameter.
func checkParameterName(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return detail(ErrInvalid, "%q must start with \"/\"", s)
	case len(s) > 1011:
		return detail(ErrInvalid, "longer than 1011 characters")
	case strings.Contains(s, "//"):
		return detail(ErrInvalid, "%q contains an empty path segment (\"//\")", s)
	case strings.HasSuffix(s, "/"):
		return detail(ErrInvalid, "%q must not end with \"/\"", s)
	case hasPrefixFold(s, "/aws") || hasPrefixFold(s, "/ssm"):
		return detail(ErrInvalid, "%q: names starting with /aws or /ssm are reserved by AWS", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') && !strings.ContainsRune("_.-/", c) {
			return detail(ErrInvalid, "%q: %q is not allowed (only letters, digits and _.-/)", s, c)
		}
	}
	if strings.Count(s, "/") > 15 {
		return detail(ErrInvalid, "%q is more than 15 levels deep, SSM's limit", s)
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// normalizePrefix applies the default and drops trailing slashes. The root "/" is
// refused: an IAM policy for every parameter in the account is what the prefix exists
// to avoid.
func normalizePrefix(p string) (string, error) {
	if p == "" {
		p = DefaultParameterPrefix
	}
	trimmed := strings.TrimRight(p, "/")
	if trimmed == "" {
		return "", detail(ErrInvalid, "parameter prefix %q: must name a path below the root, such as %s", p, DefaultParameterPrefix)
	}
	if err := checkParameterName(trimmed); err != nil {
		return "", detail(ErrInvalid, "parameter prefix: %v", err)
	}
	return trimmed, nil
}
