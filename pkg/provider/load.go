package provider

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultParameterPrefix is where tokens are published when Options.ParameterPrefix
// is empty; it matches the default of TOKEN_PARAMETER_PREFIX.
const DefaultParameterPrefix = "/token-refresher/tokens"

// maxFileSize bounds what Load reads. A registry of a few hundred providers is tens of
// kilobytes; anything near this is the wrong file, not a registry.
const maxFileSize = 1 << 20

// Options are the deployment's settings that the registry depends on.
type Options struct {
	// ParameterPrefix is the SSM path every token is published under; "" means
	// DefaultParameterPrefix. Trailing slashes are ignored. It must be a valid SSM
	// path below the root, because the function's IAM policy and its batched reads
	// are scoped to it.
	ParameterPrefix string
}

// Registry is the validated, immutable set of providers. Methods return copies, so a
// caller that modifies a Provider (its maps, its URL) cannot change the registry that
// other callers, or later invocations of a warm Lambda, see.
type Registry struct {
	providers []Provider
	secrets   []secretRef // parallel to providers, parsed once for BySecret
	byName    map[string]int
	prefix    string
}

// Providers returns every provider in file order, so results and logs come out in
// the order the operator wrote them.
func (r *Registry) Providers() []Provider {
	out := make([]Provider, len(r.providers))
	for i, p := range r.providers {
		out[i] = p.clone()
	}
	return out
}

// Lookup finds a provider by name, for rotate events that name providers.
func (r *Registry) Lookup(name string) (Provider, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Provider{}, false
	}
	return r.providers[i].clone(), true
}

// BySecret returns, in file order, the providers whose secret_id names the same
// Secrets Manager secret as secretID, so that a secret-change event rotates exactly
// the tokens minted with that secret. Either side may be a name, a partial ARN or a
// full ARN (with the "-XXXXXX" suffix Secrets Manager appends):
//
//   - name and name match when equal;
//   - a name matches an ARN of that name, full or partial, in any account and region
//     (a name has neither; the function only receives its own account's events);
//   - two ARNs match when partition, region and account agree and they name the
//     same secret, one full and one partial or both alike. Full ARNs with different
//     suffixes are different secrets: the name was deleted and created again.
//
// A partial ARN of a name ending in "-" and six letters or digits is indistinguishable
// from a full ARN, so such a name matches either reading ("app" and "app-abc123" both
// match ".../secret:app-abc123"): rotating one token too many costs a token request,
// missing one leaves a token minted with credentials just rotated away. An
// unparsable secretID matches nothing.
func (r *Registry) BySecret(secretID string) []Provider {
	ref, err := parseSecretRef(secretID)
	if err != nil {
		return nil
	}
	var out []Provider
	for i, s := range r.secrets {
		if s.matches(ref) {
			out = append(out, r.providers[i].clone())
		}
	}
	return out
}

// ParameterPrefix is the normalized prefix every Parameter is under (no trailing
// slash), for the store's GetParametersByPath reads.
func (r *Registry) ParameterPrefix() string { return r.prefix }

// LoadFile is Load on a file; errors are prefixed with the path so a deployment with
// several registries says which one is wrong.
func LoadFile(path string, opts Options) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reg, err := Load(f, opts)
	if err != nil {
		if multi, ok := err.(interface{ Unwrap() []error }); ok && len(multi.Unwrap()) > 1 {
			return nil, fmt.Errorf("%s: %d problems:\n%w", path, len(multi.Unwrap()), err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reg, nil
}

// Load reads and validates a provider registry (see DESIGN.md, "Provider registry").
//
// It is strict, because a mistake here otherwise surfaces as a failed or, worse, a
// silently misconfigured token request at 3 a.m.: unknown keys, duplicate keys,
// duplicate names or parameters, bad URLs, durations, pointers, headers and
// parameters are all rejected. Every problem is reported, not just the first, joined
// with errors.Join; each per-provider problem is a *FieldError naming the provider
// and the field, and every one wraps a sentinel error of this package.
//
// Optional fields given as "" or null are treated as absent. Defaults applied:
// auth_method client_secret_post, basic_auth_encoding form, request_format form,
// parameter ParameterPrefix + "/" + name. Durations are Go durations ("15m", "12h")
// or whole days ("30d"), and must be positive. YAML anchors and aliases work; merge
// keys ("<<") do not, since they would hide which provider sets what.
func Load(r io.Reader, opts Options) (*Registry, error) {
	prefix, err := normalizePrefix(opts.ParameterPrefix)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read providers: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, detail(ErrInvalid, "providers file is larger than %d bytes", maxFileSize)
	}
	items, errs, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	l := &loader{prefix: prefix, errs: errs, names: map[string]int{}, params: map[string]string{}}
	for i, item := range items {
		l.provider(i, item)
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	reg := &Registry{providers: l.providers, secrets: l.secrets, byName: map[string]int{}, prefix: prefix}
	for i, p := range reg.providers {
		reg.byName[p.Name] = i
	}
	return reg, nil
}

// parseRoot checks the document around the providers list and returns its entries.
// A non-nil error means the file cannot be read as a registry at all; errs are
// problems that still let the entries be checked, so they are reported together.
func parseRoot(data []byte) (items []*yaml.Node, errs []error, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil, detail(ErrNoProviders, "providers file is empty")
		}
		return nil, nil, fmt.Errorf("providers file is not valid YAML: %w", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, nil, detail(ErrInvalid, "providers file has more than one YAML document (line %d); put all providers in one list", extra.Line)
	case err != io.EOF:
		return nil, nil, fmt.Errorf("providers file is not valid YAML: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return nil, nil, detail(ErrNoProviders, "providers file has no providers")
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, detail(ErrInvalid, "providers file must be a mapping with a \"providers\" list, not %s (line %d)", kindName(root), root.Line)
	}
	var list *yaml.Node
	seen := map[string]int{}
	for j := 0; j+1 < len(root.Content); j += 2 {
		k := resolve(root.Content[j])
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, detail(ErrDuplicateKey, "duplicate top-level key %q (line %d); first at line %d", k.Value, k.Line, first))
			continue
		}
		seen[k.Value] = k.Line
		if k.Kind != yaml.ScalarNode || k.Value != "providers" {
			errs = append(errs, detail(ErrUnknownField, "unknown top-level field %q (line %d); only \"providers\" is allowed", k.Value, k.Line))
			continue
		}
		list = resolve(root.Content[j+1])
	}
	switch {
	case list == nil:
		errs = append(errs, detail(ErrNoProviders, "providers file has no \"providers\" list"))
	case isNull(list) || list.Kind == yaml.SequenceNode && len(list.Content) == 0:
		errs = append(errs, detail(ErrNoProviders, "the \"providers\" list is empty (line %d)", list.Line))
	case list.Kind != yaml.SequenceNode:
		errs = append(errs, detail(ErrInvalid, "\"providers\" must be a list, not %s (line %d)", kindName(list), list.Line))
	default:
		items = list.Content
	}
	return items, errs, nil
}

// providerFields are the keys a provider entry may have, in the order they are checked.
var providerFields = []string{
	"name", "token_url", "secret_id", "auth_method", "basic_auth_encoding",
	"request_format", "scope", "audience", "extra_params", "headers", "response",
	"refresh_before", "max_age", "default_lifetime", "parameter",
}

// loader carries what checking one provider needs to know about the others.
type loader struct {
	prefix    string
	errs      []error
	providers []Provider
	secrets   []secretRef
	names     map[string]int    // name -> index of the first provider with it
	params    map[string]string // parameter -> how the first provider with it is called
}

// entry is one provider being checked.
type entry struct {
	l    *loader
	idx  int
	name string // as written, for messages; may be invalid
	// dupName: an earlier entry has the same name, so messages add the index.
	dupName bool
	line    int
	fields  map[string]*yaml.Node
	errs    []*FieldError
}

func (e *entry) fail(field string, line int, err error) {
	e.errs = append(e.errs, &FieldError{Provider: e.name, Index: e.idx, Field: field, Line: line, Err: err, dupName: e.dupName})
}

func (e *entry) label() string {
	return (&FieldError{Provider: e.name, Index: e.idx, dupName: e.dupName}).label()
}

func (l *loader) provider(idx int, n *yaml.Node) {
	n = resolve(n)
	e := &entry{l: l, idx: idx, line: n.Line, fields: map[string]*yaml.Node{}}
	defer func() {
		// Report in line order, which is how a reader walks the file.
		slices.SortStableFunc(e.errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
		for _, fe := range e.errs {
			l.errs = append(l.errs, fe)
		}
	}()
	if n.Kind != yaml.MappingNode {
		e.fail("", n.Line, detail(ErrInvalid, "must be a mapping of fields, not %s", kindName(n)))
		return
	}
	// The name comes first so every later message can use it.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := resolve(n.Content[j]); k.Kind == yaml.ScalarNode && k.Value == "name" {
			if v := resolve(n.Content[j+1]); v.Kind == yaml.ScalarNode && !isNull(v) {
				e.name = v.Value
				_, e.dupName = l.names[e.name]
			}
			break
		}
	}
	keyLines := map[string]int{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k := resolve(n.Content[j])
		if k.Kind != yaml.ScalarNode {
			e.fail("", k.Line, detail(ErrInvalid, "field names must be strings, not %s", kindName(k)))
			continue
		}
		if first, dup := keyLines[k.Value]; dup {
			e.fail(k.Value, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			continue
		}
		keyLines[k.Value] = k.Line
		if !slices.Contains(providerFields, k.Value) {
			e.fail(k.Value, k.Line, ErrUnknownField)
			continue
		}
		e.fields[k.Value] = resolve(n.Content[j+1])
	}

	p := Provider{AuthMethod: ClientSecretPost, BasicAuthEncoding: BasicForm, RequestFormat: FormRequest}
	nameOK := e.checkName(&p)
	if s, line, ok := e.required("token_url"); ok {
		u, err := parseTokenURL(s)
		if err != nil {
			e.fail("token_url", line, err)
		}
		p.TokenURL = u
	}
	var secret secretRef
	if s, line, ok := e.required("secret_id"); ok {
		ref, err := parseSecretRef(s)
		if err != nil {
			e.fail("secret_id", line, err)
		}
		p.SecretID, secret = s, ref
	}
	e.checkDialect(&p)
	if s, line, ok := e.optional("scope"); ok {
		if err := checkScope(s); err != nil {
			e.fail("scope", line, err)
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
	p.DefaultLifetime = e.duration("default_lifetime")
	p.Parameter = e.parameter(p.Name, nameOK)

	if len(e.errs) == 0 {
		l.providers = append(l.providers, p)
		l.secrets = append(l.secrets, secret)
	}
}

// value returns a field's node when it is set: present, not null and not "".
func (e *entry) value(field string) (*yaml.Node, bool) {
	v, ok := e.fields[field]
	if !ok || isNull(v) || v.Kind == yaml.ScalarNode && v.Value == "" {
		return nil, false
	}
	return v, true
}

// optional returns a string field; ok is false when it is unset or not a string
// (which has been reported).
func (e *entry) optional(field string) (s string, line int, ok bool) {
	v, set := e.value(field)
	if !set {
		return "", 0, false
	}
	if v.Kind != yaml.ScalarNode {
		e.fail(field, v.Line, detail(ErrInvalid, "must be a string, not %s", kindName(v)))
		return "", v.Line, false
	}
	return v.Value, v.Line, true
}

// required is optional that reports an unset field.
func (e *entry) required(field string) (s string, line int, ok bool) {
	if _, set := e.value(field); !set {
		line := e.line
		if v, ok := e.fields[field]; ok {
			line = v.Line
		}
		e.fail(field, line, ErrRequired)
		return "", 0, false
	}
	return e.optional(field)
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
		switch m := AuthMethod(s); m {
		case ClientSecretPost, ClientSecretBasic:
			p.AuthMethod = m
		default:
			e.fail("auth_method", line, detail(ErrInvalid, "%q: want %s or %s", s, ClientSecretPost, ClientSecretBasic))
		}
	}
	if s, line, ok := e.optional("basic_auth_encoding"); ok {
		switch enc := BasicEncoding(s); enc {
		case BasicForm, BasicRaw:
			p.BasicAuthEncoding = enc
		default:
			e.fail("basic_auth_encoding", line, detail(ErrInvalid, "%q: want %s or %s", s, BasicForm, BasicRaw))
		}
		// "raw" only changes how a Basic header is built; with client_secret_post it
		// would do nothing, so it is a sign the author believes Basic is in use.
		// "form" is the default and harmless, so it is allowed everywhere.
		if p.BasicAuthEncoding == BasicRaw && p.AuthMethod == ClientSecretPost {
			e.fail("basic_auth_encoding", line, detail(ErrInvalid, "raw has no effect with auth_method client_secret_post; did you mean auth_method: client_secret_basic?"))
		}
	}
	if s, line, ok := e.optional("request_format"); ok {
		switch f := RequestFormat(s); f {
		case FormRequest, JSONRequest:
			p.RequestFormat = f
		default:
			e.fail("request_format", line, detail(ErrInvalid, "%q: want %s or %s", s, FormRequest, JSONRequest))
		}
	}
}

// reservedParams are set by the token client from other fields; overriding them in
// extra_params would send two values or silently replace one.
var reservedParams = map[string]string{
	"grant_type":    "the grant is always client_credentials",
	"client_id":     "it comes from secret_id",
	"client_secret": "it comes from secret_id",
	"scope":         "use the scope field",
	"audience":      "use the audience field",
}

func (e *entry) extraParams() map[string]string {
	pairs := e.stringMap("extra_params")
	if pairs == nil {
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		if why, ok := reservedParams[kv.key]; ok {
			e.fail("extra_params."+kv.key, kv.line, detail(ErrReserved, "%s is reserved: %s", kv.key, why))
			continue
		}
		out[kv.key] = kv.value
	}
	return out
}

// reservedHeaders are set by the token client or by net/http; a configured value
// would be overwritten or would contradict the body actually sent.
var reservedHeaders = map[string]string{
	"authorization":     "the client sets it for client_secret_basic",
	"content-type":      "the client sets it from request_format",
	"content-length":    "the HTTP client sets it",
	"host":              "it comes from token_url",
	"transfer-encoding": "the HTTP client sets it",
}

func (e *entry) headers() map[string]string {
	pairs := e.stringMap("headers")
	if pairs == nil {
		return nil
	}
	out := make(map[string]string, len(pairs))
	seen := map[string]string{}
	for _, kv := range pairs {
		field := "headers." + kv.key
		lower := toLowerASCII(kv.key)
		switch why, reserved := reservedHeaders[lower]; {
		case !validToken(kv.key):
			e.fail(field, kv.line, detail(ErrInvalid, "%q is not a valid header name", kv.key))
		case reserved:
			e.fail(field, kv.line, detail(ErrReserved, "%s is reserved: %s", kv.key, why))
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

func (e *entry) response() ResponseFields {
	var rf ResponseFields
	v, set := e.value("response")
	if !set {
		return rf
	}
	if v.Kind != yaml.MappingNode {
		e.fail("response", v.Line, detail(ErrInvalid, "must be a mapping, not %s", kindName(v)))
		return rf
	}
	targets := map[string]*string{
		"access_token": &rf.AccessToken,
		"token_type":   &rf.TokenType,
		"expires_in":   &rf.ExpiresIn,
		"scope":        &rf.Scope,
	}
	seen := map[string]int{}
	for j := 0; j+1 < len(v.Content); j += 2 {
		k, val := resolve(v.Content[j]), resolve(v.Content[j+1])
		field := "response." + k.Value
		if first, dup := seen[k.Value]; dup {
			e.fail(field, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			continue
		}
		seen[k.Value] = k.Line
		target, known := targets[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode || !known:
			e.fail(field, k.Line, ErrUnknownField)
		case isNull(val):
		case val.Kind != yaml.ScalarNode:
			e.fail(field, val.Line, detail(ErrInvalid, "must be a JSON pointer string, not %s", kindName(val)))
		default:
			if _, err := ParsePointer(val.Value); err != nil {
				e.fail(field, val.Line, err)
				continue
			}
			*target = val.Value
		}
	}
	return rf
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

type pair struct {
	key, value string
	line       int
}

// stringMap reads a mapping of strings, reporting non-strings and duplicate keys
// under "field.key". It returns nil when the field is unset or not a mapping.
func (e *entry) stringMap(field string) []pair {
	v, set := e.value(field)
	if !set {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		e.fail(field, v.Line, detail(ErrInvalid, "must be a mapping of strings, not %s", kindName(v)))
		return nil
	}
	out := []pair{}
	seen := map[string]int{}
	for j := 0; j+1 < len(v.Content); j += 2 {
		k, val := resolve(v.Content[j]), resolve(v.Content[j+1])
		if k.Kind != yaml.ScalarNode || isNull(k) || k.Value == "" {
			e.fail(field, k.Line, detail(ErrInvalid, "keys must be non-empty strings"))
			continue
		}
		sub := field + "." + k.Value
		if first, dup := seen[k.Value]; dup {
			e.fail(sub, k.Line, detail(ErrDuplicateKey, "duplicate key; first at line %d", first))
			continue
		}
		seen[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode || isNull(val) {
			e.fail(sub, val.Line, detail(ErrInvalid, "must be a string, not %s (quote \"\" for an empty value)", kindName(val)))
			continue
		}
		out = append(out, pair{key: k.Value, value: val.Value, line: val.Line})
	}
	return out
}

// resolve follows aliases, so anchors work anywhere a value is expected.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	default:
		return "a scalar"
	}
}
