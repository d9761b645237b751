package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/token-refresher/token-refresher/internal/cut"
)

// Bounds of the fields tokenctl prints in a table, in bytes before the "…" mark.
const (
	maxName   = 100 // a provider, status, token type, fingerprint, time
	maxField  = 120 // a parameter, endpoint, reason, claim
	maxScope  = 60
	maxErrTxt = 160
)

// safe makes text for a terminal: every character that is not printable (escape
// sequences that set the window title, clear the screen or move the cursor; tabs
// that would shift the table's columns; bidirectional overrides) is shown as its Go
// escape (\x1b, \u202e), never sent; a backslash is shown as \\, so an escape
// shown is never one the text spelled; a byte that is not UTF-8 is shown as \xff;
// and the result is at most n bytes and a "…". Every field tokenctl prints in a
// table passes through it: most come from outside (a provider's claims, a health
// record, a parameter's name or description).
func safe(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() <= n; {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) && r != '\\':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return cut.String(b.String(), n)
}
