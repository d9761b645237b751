package registry

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v4"
)

// field is one value as written: decoded by yaml into T, with the node it came
// from for its line and kind. A value of the wrong type keeps yaml's error in err
// instead of failing the entry, so the checks can name the field it belongs to
// and still check every other field.
type field[T any] struct {
	v   T
	n   *yaml.Node
	err error
}

// UnmarshalYAML keeps the node; yaml checks unknown and duplicate keys below it.
func (f *field[T]) UnmarshalYAML(n *yaml.Node) error {
	f.n, f.err = n, n.Load(&f.v, yaml.WithKnownFields())
	return nil
}

// unset reports a value that counts as absent: missing, null or "".
func (f field[T]) unset() bool {
	return f.n == nil || f.n.Kind == yaml.ScalarNode && (f.n.Value == "" || f.n.ShortTag() == "!!null")
}

func (f field[T]) line() int {
	if f.n == nil {
		return 0
	}
	return f.n.Line
}

// problem is one of yaml's load errors in the package's terms: key is the key
// yaml names for an unknown or duplicate key, "" otherwise.
type problem struct {
	line int
	key  string
	err  error
}

// problems reads yaml's load errors. yaml gives each one's line but names the key
// only in its text, so the key is read from there.
func problems(err error) []problem {
	var le *yaml.LoadErrors
	if !errors.As(err, &le) {
		return []problem{{err: detail(ErrInvalid, "%v", err)}}
	}
	var out []problem
	for _, e := range le.Errors {
		p := problem{line: e.Mark.Line, err: detail(ErrInvalid, "%s", e.Message)}
		var first int
		if k, ok := strings.CutPrefix(e.Message, "field "); ok && strings.Contains(k, " not found in type ") {
			p.key, _, _ = strings.Cut(k, " not found in type ")
			p.err = ErrUnknownField
		} else if _, err := fmt.Sscanf(e.Message, "mapping key %q already defined at line %d", &p.key, &first); err == nil {
			p.err = detail(ErrDuplicateKey, "duplicate key; first at line %d", first)
		}
		out = append(out, p)
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

func kindName(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!null":
		return "null"
	default:
		return "a scalar"
	}
}
