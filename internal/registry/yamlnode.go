package registry

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v4"
)

// field is one value as written, decoded into T, with its node for line and kind. A
// value yaml cannot decode keeps yaml's error, to be reported under its field.
type field[T any] struct {
	v   T
	n   yaml.Node // zero when the key is missing or null: yaml does not decode null
	err error
}

// UnmarshalYAML keeps the node; yaml still checks the keys below it.
func (f *field[T]) UnmarshalYAML(n *yaml.Node) error {
	f.n, f.err = *n, n.Load(&f.v, yaml.WithKnownFields())
	return nil
}

// unset reports a value that counts as absent: missing, null or "".
func (f field[T]) unset() bool {
	return f.n.Kind == 0 || f.n.Kind == yaml.ScalarNode && f.n.Value == ""
}

// problems reads yaml's errors: the line of each, and the key it names for an
// unknown or duplicate key, which yaml gives only in its text.
func problems(err error, report func(line int, key string, err error)) {
	le := &yaml.LoadErrors{}
	if err != nil && !errors.As(err, &le) {
		report(0, "", detail(errInvalid, "%v", err))
	}
	for _, e := range le.Errors {
		key, first := "", 0
		if k, _, ok := strings.Cut(e.Message, " not found in type "); ok {
			report(e.Mark.Line, strings.TrimPrefix(k, "field "), errUnknownField)
		} else if _, err := fmt.Sscanf(e.Message, "mapping key %q already defined at line %d", &key, &first); err == nil {
			report(e.Mark.Line, key, detail(errDuplicateKey, "duplicate key; first at line %d", first))
		} else {
			report(e.Mark.Line, "", detail(errInvalid, "%s", e.Message))
		}
	}
}

// resolve follows aliases, so anchors work anywhere a value is expected.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	if n.Kind == 0 || n.ShortTag() == "!!null" {
		return "null"
	}
	return cmp.Or(map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}[n.Kind], "a scalar")
}
