package oauth

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// redacted replaces a client secret wherever the redactor finds it.
const redacted = "[redacted]"

// minPrefix is the shortest start of a secret that is redacted on its own: an
// endpoint that echoes the request may cut its echo, and a provider's text may be
// cut anywhere. Shorter starts are too likely to be ordinary words.
const minPrefix = 8

// minAnywhere is the shortest secret, in characters, redacted wherever it appears.
// A shorter one cannot be told from the letters of ordinary words ("unreachable"
// holds every one-letter secret but a few), so it is redacted only where it stands
// alone: with no letter or digit right before or after it.
const minAnywhere = 4

// redactor removes one client's secret from text, in every form the client sends it
// or that can be derived from it: raw; percent-encoded with either case of hex digit
// and with '+' or %20 for a space (the form and Basic encodings); JSON-escaped
// (\uXXXX in either case, surrogate pairs, \/ and the short escapes); as HTML
// entities; any mix of these, character by character; any start of it of at
// least minPrefix characters in those forms; and the base64 of the secret and of
// "id:secret" in both Basic encodings, in both alphabets, padded or not. A secret
// shorter than minAnywhere is redacted in all these forms only where it stands
// alone, not inside a word.
//
// It is hand-written because no library redacts a value in its encodings; it is a
// regular expression built from the secret (RE2: linear in the text whatever the
// secret) plus literal base64 strings, built only when an error is reported.
type redactor struct {
	re       *regexp.Regexp
	literals []string
	// alone restricts redaction to matches that stand alone (a short secret).
	alone bool
}

func newRedactor(cred Credentials) *redactor {
	runes := []rune(cred.ClientSecret)
	r := &redactor{alone: len(runes) < minAnywhere}
	if len(runes) == 0 {
		return r
	}
	var b strings.Builder
	required := min(len(runes), minPrefix)
	for i, c := range runes {
		if i < required {
			b.WriteString(runeForms(c))
		} else {
			// Each later character is optional on its own: over-redacting a few
			// characters after a cut echo is harmless, and no nesting keeps the
			// expression small for long secrets.
			b.WriteString(runeForms(c) + "?")
		}
	}
	r.re = regexp.MustCompile(b.String())

	for _, plain := range []string{
		cred.ClientSecret,
		cred.ClientID + ":" + cred.ClientSecret,
		formEncode(cred.ClientID) + ":" + formEncode(cred.ClientSecret),
		url.QueryEscape(cred.ClientID) + ":" + url.QueryEscape(cred.ClientSecret),
	} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			r.literals = append(r.literals, enc.EncodeToString([]byte(plain)))
		}
	}
	return r
}

// redact returns s with every form of the secret replaced.
func (r *redactor) redact(s string) string {
	if !r.alone {
		for _, l := range r.literals {
			s = strings.ReplaceAll(s, l, redacted)
		}
		if r.re != nil {
			s = r.re.ReplaceAllLiteralString(s, redacted)
		}
		return s
	}
	for _, l := range r.literals {
		s = replaceAlone(s, literalMatches(s, l))
	}
	if r.re != nil {
		s = replaceAlone(s, r.re.FindAllStringIndex(s, -1))
	}
	return s
}

// literalMatches returns where l occurs in s, without overlaps.
func literalMatches(s, l string) [][]int {
	var out [][]int
	for i := 0; ; {
		j := strings.Index(s[i:], l)
		if j < 0 {
			return out
		}
		out = append(out, []int{i + j, i + j + len(l)})
		i += j + len(l)
	}
}

// replaceAlone replaces the matches of s (ascending, not overlapping) that stand
// alone: with no letter or digit right before or after them.
func replaceAlone(s string, matches [][]int) string {
	var b strings.Builder
	last := 0
	for _, m := range matches {
		before, _ := utf8.DecodeLastRuneInString(s[:m[0]])
		after, _ := utf8.DecodeRuneInString(s[m[1]:])
		if isWordRune(before) || isWordRune(after) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(redacted)
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// runeForms is a regular expression group matching c in any encoding the redactor
// knows.
func runeForms(c rune) string {
	forms := []string{regexp.QuoteMeta(string(c))}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], c)
	var pct strings.Builder
	for _, by := range buf[:n] {
		fmt.Fprintf(&pct, "%%%02X", by)
	}
	forms = append(forms, "(?i:"+pct.String()+")")
	if c <= 0xFFFF {
		forms = append(forms, fmt.Sprintf(`(?i:\\u%04X)`, c))
	} else {
		c -= 0x10000
		forms = append(forms, fmt.Sprintf(`(?i:\\u%04X\\u%04X)`, 0xD800+(c>>10), 0xDC00+(c&0x3FF)))
		c += 0x10000
	}
	switch c {
	case ' ':
		forms = append(forms, `\+`)
	case '"':
		forms = append(forms, `\\"`, `&quot;`, `&#34;`)
	case '\\':
		forms = append(forms, `\\\\`)
	case '/':
		forms = append(forms, `\\/`)
	case '\b':
		forms = append(forms, `\\b`)
	case '\f':
		forms = append(forms, `\\f`)
	case '\n':
		forms = append(forms, `\\n`)
	case '\r':
		forms = append(forms, `\\r`)
	case '\t':
		forms = append(forms, `\\t`)
	case '&':
		forms = append(forms, `&amp;`, `&#38;`)
	case '<':
		forms = append(forms, `&lt;`, `&#60;`)
	case '>':
		forms = append(forms, `&gt;`, `&#62;`)
	case '\'':
		forms = append(forms, `&#39;`, `(?i:&#x27;)`, `&apos;`)
	}
	return "(?:" + strings.Join(forms, "|") + ")"
}

// formEncode is RFC 6749 §2.3.1's encoding of a client id or secret for HTTP Basic
// (application/x-www-form-urlencoded), with a space as %20 rather than '+': servers
// that percent-decode only (Authlib, django-oauth-toolkit and others) read %20 as a
// space too, and '+' as a plus.
func formEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
