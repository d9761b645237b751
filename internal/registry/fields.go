package registry

import (
	"cmp"
	"errors"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/secretid"
)

// entry is one provider entry being checked: its fields as written, decoded by the
// YAML library into strings or kept as nodes where their keys need lines of their
// own, the line of each field, and the problems found so far.
type entry struct {
	l    *loader
	idx  int
	line int
	// name is as written, for messages; it may be invalid.
	name string
	// dupName: an earlier entry has the same name, so messages add the index.
	dupName bool
	errs    []*FieldError

	strings  map[string]string     // scalar fields that are set
	maps     map[string]*yaml.Node // mapping fields that are set
	lines    map[string]int        // line of each field's value
	mistyped map[string]bool       // fields whose value has the wrong type (reported)
}

// stringFields and mapFields are the keys a provider entry may have.
var (
	stringFields = []string{
		"name", "token_url", "secret_id", "auth_method", "basic_auth_encoding", "request_format",
		"scope", "audience", "refresh_before", "max_age", "max_lifetime", "default_lifetime", "parameter",
	}
	mapFields = []string{"extra_params", "headers", "response", "verify"}
)

func newEntry(l *loader, idx int, n *yaml.Node) *entry {
	e := &entry{l: l, idx: idx, line: n.Line,
		strings: map[string]string{}, maps: map[string]*yaml.Node{}, lines: map[string]int{}, mistyped: map[string]bool{}}
	// The name comes first so every later message can use it.
	if n.Kind == yaml.MappingNode {
		for k, v := range pairs(n) {
			if k.Kind == yaml.ScalarNode && k.Value == "name" {
				if v.Kind == yaml.ScalarNode && !isNull(v) {
					e.name = v.Value
					_, e.dupName = l.names[e.name]
				}
				break
			}
		}
	}
	return e
}

func (e *entry) fail(field string, line int, err error) {
	e.errs = append(e.errs, &FieldError{Provider: e.name, Index: e.idx, Field: field, Line: line, Err: err, dupName: e.dupName})
}

// report hands the entry's problems to the loader in line order, which is how a
// reader walks the file.
func (e *entry) report() {
	slices.SortStableFunc(e.errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
	for _, fe := range e.errs {
		e.l.errs = append(e.l.errs, fe)
	}
}

func (e *entry) label() string {
	return (&FieldError{Provider: e.name, Index: e.idx, dupName: e.dupName}).label()
}

// decode reads the entry's keys: unknown and duplicate keys are problems, unset
// values ("" or null) are left out, and every other value must have its field's
// type.
func (e *entry) decode(n *yaml.Node) {
	keyLines := map[string]int{}
	for k, v := range pairs(n) {
		if k.Kind != yaml.ScalarNode {
			e.fail("", k.Line, detail(ErrInvalid, "field names must be strings, not %s", kindName(k)))
			continue
		}
		field := k.Value
		if first, dup := keyLines[field]; dup {
			e.fail(field, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			continue
		}
		keyLines[field] = k.Line
		e.lines[field] = v.Line
		switch {
		case slices.Contains(stringFields, field):
			var s string
			if err := v.Decode(&s); err != nil || v.Kind != yaml.ScalarNode {
				e.fail(field, v.Line, detail(ErrInvalid, "must be a string, not %s", kindName(v)))
				e.mistyped[field] = true
			} else if !unset(v) {
				e.strings[field] = s
			}
		case slices.Contains(mapFields, field):
			if !unset(v) {
				e.maps[field] = v
			}
		default:
			e.fail(field, k.Line, ErrUnknownField)
		}
	}
}

// check turns the decoded fields into a Provider, reporting every problem.
func (e *entry) check() (Provider, secretid.ID, bool) {
	p := Provider{Endpoint: oauth.Endpoint{
		AuthMethod: oauth.ClientSecretPost, BasicEncoding: oauth.BasicForm, RequestFormat: oauth.FormRequest,
	}}
	nameOK := e.checkName(&p)
	if s, line, ok := e.required("token_url"); ok {
		u, err := parseTokenURL(s)
		if err != nil {
			e.fail("token_url", line, err)
		}
		p.TokenURL = u
	}
	var secret secretid.ID
	if s, line, ok := e.required("secret_id"); ok {
		id, err := secretid.Parse(s)
		if err != nil {
			e.fail("secret_id", line, detail(ErrInvalid, "%v", err))
		}
		p.SecretID, secret = s, id
	}
	e.checkDialect(&p)
	if s, line, ok := e.optional("scope"); ok {
		if err := oauth.CheckScope(s); err != nil {
			e.fail("scope", line, detail(ErrInvalid, "%v (use >- rather than | for a multi-line scope)", err))
		}
		p.Scope = s
	}
	if s, line, ok := e.optional("audience"); ok {
		if hasControl(s) {
			e.fail("audience", line, detail(ErrInvalid, "contains a control character (a block scalar's newline?)"))
		}
		p.Audience = s
	}
	p.ExtraParams = e.extraParams()
	p.Headers = e.headers()
	p.Response = e.response()
	p.RefreshBefore = e.duration("refresh_before")
	p.MaxAge = e.duration("max_age")
	p.MaxLifetime = cmp.Or(e.duration("max_lifetime"), DefaultMaxLifetime)
	p.DefaultLifetime = e.duration("default_lifetime")
	p.Parameter = e.parameter(p.Name, nameOK)
	p.Verify = e.verify()
	return p, secret, len(e.errs) == 0
}

// optional returns a string field that is set.
func (e *entry) optional(field string) (s string, line int, ok bool) {
	s, ok = e.strings[field]
	return s, e.lines[field], ok
}

// required is optional that reports an unset field. A value of the wrong type has
// been reported already.
func (e *entry) required(field string) (s string, line int, ok bool) {
	s, line, ok = e.optional(field)
	if !ok && !e.mistyped[field] {
		if _, written := e.lines[field]; !written {
			line = e.line
		}
		e.fail(field, line, ErrRequired)
	}
	return s, line, ok
}

func (e *entry) checkName(p *Provider) bool {
	name, line, ok := e.required("name")
	if !ok {
		return false
	}
	switch {
	case len(name) > 64:
		e.fail("name", line, detail(ErrInvalid, "longer than 64 characters"))
		return false
	case !validName(name):
		e.fail("name", line, detail(ErrInvalid, "%q: use only a-z, 0-9, _ and - (the name becomes part of the SSM parameter name)", name))
		return false
	}
	if first, dup := e.l.names[name]; dup {
		e.fail("name", line, detail(ErrDuplicate, "%q is also the name of providers[%d]", name, first))
		return false
	}
	e.l.names[name] = e.idx
	p.Name = name
	return true
}

func (e *entry) checkDialect(p *Provider) {
	if s, line, ok := e.optional("auth_method"); ok {
		switch m := oauth.AuthMethod(s); m {
		case oauth.ClientSecretPost, oauth.ClientSecretBasic:
			p.AuthMethod = m
		default:
			e.fail("auth_method", line, detail(ErrInvalid, "%q: want %s or %s", s, oauth.ClientSecretPost, oauth.ClientSecretBasic))
		}
	}
	if s, line, ok := e.optional("basic_auth_encoding"); ok {
		switch enc := oauth.BasicEncoding(s); enc {
		case oauth.BasicForm, oauth.BasicRaw:
			p.BasicEncoding = enc
		default:
			e.fail("basic_auth_encoding", line, detail(ErrInvalid, "%q: want %s or %s", s, oauth.BasicForm, oauth.BasicRaw))
		}
		// "raw" only changes how a Basic header is built; with client_secret_post it
		// would do nothing, so it is a sign the author believes Basic is in use.
		// "form" is the default and harmless, so it is allowed everywhere.
		if p.BasicEncoding == oauth.BasicRaw && p.AuthMethod == oauth.ClientSecretPost {
			e.fail("basic_auth_encoding", line, detail(ErrInvalid, "raw has no effect with auth_method client_secret_post; did you mean auth_method: client_secret_basic?"))
		}
	}
	if s, line, ok := e.optional("request_format"); ok {
		switch f := oauth.RequestFormat(s); f {
		case oauth.FormRequest, oauth.JSONRequest:
			p.RequestFormat = f
		default:
			e.fail("request_format", line, detail(ErrInvalid, "%q: want %s or %s", s, oauth.FormRequest, oauth.JSONRequest))
		}
	}
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

func (e *entry) extraParams() map[string]string {
	kvs := e.stringMap("extra_params")
	if kvs == nil {
		return nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if _, reserved := oauth.ReservedParam(kv.key); reserved {
			e.fail("extra_params."+kv.key, kv.line, detail(ErrReserved, "%s is reserved: %s", kv.key, reservedParamHint(kv.key)))
			continue
		}
		out[kv.key] = kv.value
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

func (e *entry) headers() map[string]string {
	kvs := e.stringMap("headers")
	if kvs == nil {
		return nil
	}
	out := make(map[string]string, len(kvs))
	seen := map[string]string{}
	for _, kv := range kvs {
		field := "headers." + kv.key
		lower := strings.ToLower(kv.key)
		_, reserved := oauth.ReservedHeader(kv.key)
		switch {
		case !validToken(kv.key):
			e.fail(field, kv.line, detail(ErrInvalid, "%q is not a valid header name", kv.key))
		case reserved:
			e.fail(field, kv.line, detail(ErrReserved, "%s is reserved: %s", kv.key, reservedHeaderHint(lower)))
		case hasControl(kv.value):
			// The value is not echoed: headers are where API keys end up.
			e.fail(field, kv.line, detail(ErrInvalid, "value contains a control character"))
		case seen[lower] != "":
			// Header names are case-insensitive, so YAML's own duplicate check misses these.
			e.fail(field, kv.line, detail(ErrDuplicateKey, "same header as %q", seen[lower]))
		default:
			seen[lower] = kv.key
			out[kv.key] = kv.value
		}
	}
	return out
}

func (e *entry) response() oauth.ResponseFields {
	var rf oauth.ResponseFields
	kvs := e.stringMap("response")
	targets := map[string]*string{
		"access_token": &rf.AccessToken,
		"token_type":   &rf.TokenType,
		"expires_in":   &rf.ExpiresIn,
		"scope":        &rf.Scope,
	}
	for _, kv := range kvs {
		field := "response." + kv.key
		target, known := targets[kv.key]
		if !known {
			e.fail(field, kv.keyLine, ErrUnknownField)
			continue
		}
		if _, err := oauth.ParsePointer(kv.value); err != nil {
			e.fail(field, kv.line, detail(ErrInvalidPointer, "%v", err))
			continue
		}
		*target = kv.value
	}
	return rf
}

// verify reads the verify mapping: url (required), method and expect.
func (e *entry) verify() *oauth.Check {
	v, set := e.maps["verify"]
	if !set {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		e.fail("verify", v.Line, detail(ErrInvalid, "must be a mapping with url, and optionally method and expect, not %s", kindName(v)))
		return nil
	}
	chk := &oauth.Check{}
	seen := map[string]int{}
	ok := true
	for k, val := range pairs(v) {
		field := "verify." + k.Value
		if first, dup := seen[k.Value]; dup {
			e.fail(field, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			ok = false
			continue
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "url":
			var s string
			if val.Kind != yaml.ScalarNode || val.Decode(&s) != nil || s == "" {
				e.fail(field, val.Line, detail(ErrInvalid, "must be a URL"))
				ok = false
				continue
			}
			u, err := parseTokenURL(s)
			if err != nil {
				e.fail(field, val.Line, err)
				ok = false
				continue
			}
			chk.URL = u
		case "method":
			var s string
			if val.Kind != yaml.ScalarNode || val.Decode(&s) != nil || !validToken(s) || strings.ToUpper(s) != s {
				e.fail(field, val.Line, detail(ErrInvalid, "must be an HTTP method in capitals, such as GET or HEAD"))
				ok = false
				continue
			}
			chk.Method = s
		case "expect":
			var codes []int
			if val.Kind != yaml.SequenceNode || val.Decode(&codes) != nil || len(codes) == 0 ||
				slices.ContainsFunc(codes, func(c int) bool { return c < 100 || c > 599 }) {
				e.fail(field, val.Line, detail(ErrInvalid, "must be a list of HTTP statuses, such as [200, 204]"))
				ok = false
				continue
			}
			chk.Expect = codes
		default:
			e.fail(field, k.Line, ErrUnknownField)
			ok = false
		}
	}
	if _, hasURL := seen["url"]; !hasURL {
		e.fail("verify.url", v.Line, ErrRequired)
		return nil
	}
	if !ok {
		return nil
	}
	return chk
}

func (e *entry) duration(field string) time.Duration {
	s, line, ok := e.optional(field)
	if !ok {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil {
		e.fail(field, line, err)
	}
	return d
}

func (e *entry) parameter(name string, nameOK bool) string {
	prefix := e.l.prefix
	s, line, ok := e.optional("parameter")
	if !ok {
		if !nameOK {
			return "" // the name's own error says enough
		}
		s, line = prefix+"/"+name, e.line
		if err := checkParameterName(s); err != nil {
			e.fail("parameter", line, detail(ErrInvalid, "default parameter %s: %v; set a shorter name or parameter", s, err))
			return ""
		}
	} else {
		if err := checkParameterName(s); err != nil {
			e.fail("parameter", line, err)
			return ""
		}
		if !strings.HasPrefix(s, prefix+"/") {
			e.fail("parameter", line, detail(ErrOutsidePrefix,
				"%q is not under the parameter prefix %s/: the function's IAM policy and its batched GetParametersByPath reads cover only that path", s, prefix))
			return ""
		}
	}
	if other, dup := e.l.params[s]; dup {
		e.fail("parameter", line, detail(ErrDuplicate, "%s is also the parameter of %s; the two would overwrite each other's token", s, other))
		return ""
	}
	e.l.params[s] = e.label()
	return s
}

// keyValue is one entry of a mapping of strings, with the lines of its key and value.
type keyValue struct {
	key, value    string
	keyLine, line int
}

// stringMap reads a mapping field whose values are strings, reporting non-strings
// and duplicate keys under "field.key". It returns nil when the field is unset or
// not a mapping.
func (e *entry) stringMap(field string) []keyValue {
	v, set := e.maps[field]
	if !set {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		what := "a mapping of strings"
		if field == "response" {
			what = "a mapping"
		}
		e.fail(field, v.Line, detail(ErrInvalid, "must be %s, not %s", what, kindName(v)))
		return nil
	}
	out := []keyValue{}
	seen := map[string]int{}
	for k, val := range pairs(v) {
		var key string
		if k.Kind != yaml.ScalarNode || unset(k) || k.Decode(&key) != nil {
			e.fail(field, k.Line, detail(ErrInvalid, "keys must be non-empty strings"))
			continue
		}
		sub := field + "." + key
		if first, dup := seen[key]; dup {
			e.fail(sub, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			continue
		}
		seen[key] = k.Line
		var s string
		if val.Kind != yaml.ScalarNode || isNull(val) || val.Decode(&s) != nil {
			if field == "response" && isNull(val) {
				continue // an unset pointer: find the field unaided
			}
			e.fail(sub, val.Line, detail(ErrInvalid, "must be a string, not %s (quote \"\" for an empty value)", kindName(val)))
			continue
		}
		out = append(out, keyValue{key: key, value: s, keyLine: k.Line, line: val.Line})
	}
	return out
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
