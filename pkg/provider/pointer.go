package provider

import (
	"fmt"
	"strings"
)

// pointerUnescaper decodes reference tokens. A single left-to-right pass is what
// RFC 6901 §4 asks for: "~01" must become "~1", not "/".
var pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")

// ParsePointer splits an RFC 6901 JSON pointer into its unescaped reference tokens.
// "" is the whole document and yields no tokens; "/" yields one empty token (the
// member named ""), as the RFC says. Array indexes are returned as strings: only the
// document being resolved can tell whether a token names a member or an element.
//
// It is hand-written because RFC 6901 parsing is twenty lines and the well-known
// pointer libraries bring resolvers and JSON Patch with them; the registry validates
// pointers with it and the token client resolves them with it, so both agree.
func ParsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != '/' {
		return nil, fmt.Errorf("%w %q: must be empty or start with \"/\"", ErrInvalidPointer, s)
	}
	tokens := strings.Split(s[1:], "/")
	for i, t := range tokens {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%w %q: \"~\" must be followed by 0 or 1 (write \"~0\" for a literal \"~\")", ErrInvalidPointer, s)
			}
		}
		tokens[i] = pointerUnescaper.Replace(t)
	}
	return tokens, nil
}
