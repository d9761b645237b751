package registry

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/token-refresher/token-refresher/internal/secretid"
)

// maxFileSize bounds what Load reads. A provider's entry is 100 to 300 bytes, so
// 10,000 providers, about as many as one account's Parameter Store serves, fit
// with room to spare; anything near this is the wrong file, not a registry.
const maxFileSize = 4 << 20

// Options are the deployment's settings that the registry depends on.
type Options struct {
	// ParameterPrefix is the SSM path every token is published under; "" means
	// DefaultParameterPrefix. Trailing slashes are ignored. It must be a valid SSM
	// path below the root, because the function's IAM policy and its batched reads
	// are scoped to it.
	ParameterPrefix string
}

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

// Load reads and validates a provider registry.
//
// It is strict, because a mistake here otherwise surfaces as a failed or, worse, a
// silently misconfigured token request at 3 a.m.: unknown keys, duplicate keys,
// duplicate names or parameters, bad URLs, durations, pointers, headers and
// parameters are all rejected. Every problem is reported, not just the first, joined
// with errors.Join; each per-provider problem names the provider, the field and
// the line.
//
// Optional fields given as "" or null are treated as absent. Defaults applied:
// auth_method client_secret_post, basic_auth_encoding form, request_format form,
// max_lifetime 395 days, parameter ParameterPrefix + "/" + name. Durations are Go durations ("15m", "12h")
// or whole days ("30d"), and must be positive. YAML anchors and aliases work; merge
// keys ("<<") do not, since they would hide which provider sets what.
func Load(r io.Reader, opts Options) (*Registry, error) {
	l, err := check(r, opts)
	if err != nil {
		return nil, err
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return l.registry(), nil
}

// Rejected is an entry of the providers list that LoadEach could not load.
type Rejected struct {
	// Name is the provider's name as written, "" when the entry has none usable.
	Name string
	// Index is the entry's 0-based position in the list.
	Index int
	// Err holds every problem of the entry, each naming field and line.
	Err error
}

// LoadEach is Load for a registry read at run time, which an operator may have
// edited by hand since it was checked: an entry that does not load is returned
// among the rejected, with its problems, and the others are loaded, so that one
// broken entry stops only its own provider. A problem of the file as a whole (its
// syntax, its size, its top level) is still an error, as from Load.
func LoadEach(r io.Reader, opts Options) (*Registry, []Rejected, error) {
	l, err := check(r, opts)
	if err != nil {
		return nil, nil, err
	}
	var rejected []Rejected
	var whole []error
	byIndex := map[int]int{}
	for _, e := range l.errs {
		fe, ok := e.(*fieldError)
		if !ok {
			whole = append(whole, e)
			continue
		}
		k, seen := byIndex[fe.Index]
		if !seen {
			k = len(rejected)
			byIndex[fe.Index] = k
			rejected = append(rejected, Rejected{Name: fe.Provider, Index: fe.Index})
		}
		rejected[k].Err = errors.Join(rejected[k].Err, e)
	}
	if len(whole) > 0 {
		return nil, nil, errors.Join(l.errs...)
	}
	return l.registry(), rejected, nil
}

// registry is what the loader found valid.
func (l *loader) registry() *Registry {
	reg := &Registry{providers: l.providers, secrets: l.secrets, byName: map[string]int{}, prefix: l.prefix,
		fingerprint: fingerprint(l.providers, l.prefix)}
	for i, p := range reg.providers {
		reg.byName[p.Name] = i
	}
	return reg
}

// check reads a registry and checks every entry; l.errs holds the problems found.
func check(r io.Reader, opts Options) (*loader, error) {
	prefix, err := normalizePrefix(opts.ParameterPrefix)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read providers: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, detail(errInvalid, "providers file is larger than %d bytes", maxFileSize)
	}
	items, errs, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	l := &loader{prefix: prefix, errs: errs, names: map[string]int{}, params: map[string]string{}}
	for i, item := range items {
		l.provider(i, item)
	}
	return l, nil
}

// parseRoot checks the document around the providers list and returns its entries.
// A non-nil error means the file cannot be read as a registry at all; errs are
// problems that still let the entries be checked, so they are reported together.
func parseRoot(data []byte) (items []*yaml.Node, errs []error, err error) {
	dec, err := yaml.NewLoader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var doc, extra yaml.Node
	if err := dec.Load(&doc); err == io.EOF {
		return nil, nil, detail(ErrNoProviders, "providers file is empty")
	} else if err != nil {
		return nil, nil, syntaxError(err)
	}
	if err := dec.Load(&extra); err == nil {
		return nil, nil, detail(errInvalid, "providers file has more than one YAML document (line %d); put all providers in one list", extra.Line)
	} else if err != io.EOF {
		return nil, nil, syntaxError(err)
	}
	root := resolve(doc.Content[0])
	if root.ShortTag() == "!!null" {
		return nil, nil, detail(ErrNoProviders, "providers file has no providers")
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, detail(errInvalid, "providers file must be a mapping with a \"providers\" list, not %s (line %d)", kindName(root), root.Line)
	}
	var file struct {
		Providers yaml.Node `yaml:"providers"`
	}
	problems(root.Load(&file, yaml.WithKnownFields()), func(line int, key string, e error) {
		switch {
		case errors.Is(e, errUnknownField):
			errs = append(errs, detail(errUnknownField, "unknown top-level field %q (line %d); only \"providers\" is allowed", key, line))
		case key != "":
			err = detail(errDuplicateKey, "duplicate top-level key %q (line %d); %v", key, line, e)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	switch list := resolve(&file.Providers); {
	case list.Kind == 0:
		errs = append(errs, detail(ErrNoProviders, "providers file has no \"providers\" list"))
	case list.ShortTag() == "!!null" || list.Kind == yaml.SequenceNode && len(list.Content) == 0:
		errs = append(errs, detail(ErrNoProviders, "the \"providers\" list is empty (line %d)", list.Line))
	case list.Kind != yaml.SequenceNode:
		errs = append(errs, detail(errInvalid, "\"providers\" must be a list, not %s (line %d)", kindName(list), list.Line))
	default:
		items = list.Content
	}
	return items, errs, nil
}

// syntaxError names the line yaml stopped at, where the mistake is, rather than the
// start of the block it was reading.
func syntaxError(err error) error {
	if le := (*yaml.LoadError)(nil); errors.As(err, &le) && le.Mark.Line > 0 {
		err = fmt.Errorf("line %d: %s", le.Mark.Line, le.Message)
	}
	return fmt.Errorf("providers file is not valid YAML: %w", err)
}

// loader carries what checking one provider needs to know about the others.
type loader struct {
	prefix    string
	errs      []error
	providers []Provider
	secrets   []secretid.ID
	names     map[string]int    // name -> index of the first provider with it
	params    map[string]string // parameter -> how the first provider with it is called
}

// normalizePrefix applies the default and drops trailing slashes. The root "/" is
// refused: an IAM policy for every parameter in the account is what the prefix exists
// to avoid.
func normalizePrefix(p string) (string, error) {
	p = cmp.Or(p, DefaultParameterPrefix)
	trimmed := strings.TrimRight(p, "/")
	if trimmed == "" {
		return "", detail(errInvalid, "parameter prefix %q: must name a path below the root, such as %s", p, DefaultParameterPrefix)
	}
	if err := checkParameterName(trimmed); err != nil {
		return "", detail(errInvalid, "parameter prefix: %v", err)
	}
	return trimmed, nil
}
