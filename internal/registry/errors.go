package registry

import (
	"errors"
	"fmt"

	"github.com/token-refresher/token-refresher/internal/oauth"
)

// Sentinel errors. Every problem Load finds in well-formed YAML wraps exactly one of
// them (I/O and YAML syntax errors do not), so tests tell the kinds of problems apart
// with errors.Is instead of parsing messages. Callers need only ErrNoProviders.
var (
	// ErrNoProviders: the file has no providers at all. A refresher with nothing to do
	// is almost certainly a packaging mistake (wrong file, empty file), so it is refused.
	ErrNoProviders = errors.New("no providers")
	// errUnknownField: a key the registry does not know, usually a typo that would
	// otherwise silently leave a setting at its default.
	errUnknownField = errors.New("unknown field")
	// errDuplicateKey: the same key twice in one YAML mapping. YAML decoders disagree
	// on which one wins, so neither is taken.
	errDuplicateKey = errors.New("duplicate key")
	// errRequired: a required field is missing or empty.
	errRequired = errors.New("required")
	// errDuplicate: a name or parameter already used by another provider; two providers
	// would overwrite each other's token.
	errDuplicate = errors.New("already used by another provider")
	// errReserved: an extra parameter or header that the token client sets itself.
	errReserved = errors.New("reserved")
	// errOutsidePrefix: a parameter outside the parameter prefix, which the function's
	// IAM policy and its batched reads of the prefix would not cover.
	errOutsidePrefix = errors.New("outside the parameter prefix")
	// errInvalid: any other malformed value (bad URL, duration, enum value, ...).
	errInvalid = errors.New("invalid value")
	// errInvalidPointer: a string that is not an RFC 6901 JSON pointer; the token
	// client's own error, which decides what a pointer is.
	errInvalidPointer = oauth.ErrInvalidPointer
)

// fieldError is one problem with one field of one provider. Load returns all of them
// joined (errors.Join), so errors.As finds the first and a type switch over
// Unwrap() []error finds them all.
type fieldError struct {
	// Provider is the provider's name as written in the file, or "" when the entry
	// has no usable name; the message then says providers[Index].
	Provider string
	// Index is the entry's 0-based position in the providers list.
	Index int
	// Field is the YAML key, dotted for map entries ("headers.Authorization",
	// "response.expires_in"); "" when the problem is the entry as a whole.
	Field string
	// Line is the 1-based line in the file, or 0 when unknown.
	Line int
	// Err wraps one of the sentinel errors of this package.
	Err error

	dupName bool // Provider is not unique, so the message adds Index
}

// Error names the provider first and the field second because that is how a reader
// finds the spot in the file; the line number comes last as a hint.
func (e *fieldError) Error() string {
	msg := e.Field + ": " + e.Err.Error()
	switch {
	case e.Err == errUnknownField:
		msg = fmt.Sprintf("unknown field %q", e.Field)
	case e.Field == "":
		msg = e.Err.Error()
	}
	if e.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", e.Line)
	}
	return e.label() + ": " + msg
}

func (e *fieldError) label() string {
	switch {
	case e.Provider == "":
		return fmt.Sprintf("providers[%d]", e.Index)
	case e.dupName:
		return fmt.Sprintf("provider %q (providers[%d])", e.Provider, e.Index)
	default:
		return fmt.Sprintf("provider %q", e.Provider)
	}
}

// Unwrap lets errors.Is match the sentinel.
func (e *fieldError) Unwrap() error { return e.Err }

// detailError reads as its own message but is still errors.Is its sentinel, so that
// messages say what is wrong in words ("must be positive") rather than repeating the
// sentinel's text in front of every one.
type detailError struct {
	msg  string
	kind error
}

// Error returns the detailed message.
func (e *detailError) Error() string { return e.msg }

// Unwrap returns the sentinel the detail belongs to, for errors.Is.
func (e *detailError) Unwrap() error { return e.kind }

func detail(kind error, format string, args ...any) error {
	return &detailError{msg: fmt.Sprintf(format, args...), kind: kind}
}
