package registry

import (
	"iter"

	"go.yaml.in/yaml/v3"
)

// pairs yields the keys and values of a mapping node, aliases resolved.
func pairs(n *yaml.Node) iter.Seq2[*yaml.Node, *yaml.Node] {
	return func(yield func(*yaml.Node, *yaml.Node) bool) {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if !yield(resolve(n.Content[j]), resolve(n.Content[j+1])) {
				return
			}
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

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// unset reports a value that counts as absent: null or "".
func unset(n *yaml.Node) bool {
	return isNull(n) || n.Kind == yaml.ScalarNode && n.Value == ""
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
