package oauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"slices"
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

// redactor removes one client's secrets from text: the client secret, in every
// form the client sends it or that can be derived from it: raw; percent-encoded
// with either case of hex digit and with '+' or %20 for a space (the form and Basic
// encodings); JSON-escaped (\uXXXX in either case, surrogate pairs, \/ and the short
// escapes); as HTML entities; any mix of these, character by character; any start
// of it of at least minPrefix characters in those forms; and the base64 of the
// secret and of "id:secret" in both Basic encodings, in both alphabets, padded or
// not. A secret shorter than minAnywhere is redacted in all these forms only where
// it stands alone, not inside a word.
//
// The private key, and what was made with it for one call (each assertion, its
// signature, a signature a Signer returned), are redacted in the same forms, each
// as a "material": the key as the base64 of each of its DER encodings (PKCS#8, and
// PKCS#1 or SEC1), whole and in the PEM's lines, and those DER bytes themselves.
//
// It is hand-written because no library redacts a value in its encodings; it is a
// set of regular expressions built from the secrets (RE2: linear in the text
// whatever the secret) plus literal strings, built only when an error is reported.
type redactor struct {
	parts []part
}

// part is one secret's expression and literal forms.
type part struct {
	re       *regexp.Regexp
	literals []string
	// alone restricts redaction to matches that stand alone (a short secret).
	alone bool
}

func newRedactor(cred Credentials, made ...string) *redactor {
	r := &redactor{}
	if cred.ClientSecret != "" {
		p := material(cred.ClientSecret)
		p.alone = utf8.RuneCountInString(cred.ClientSecret) < minAnywhere
		for _, plain := range []string{
			cred.ClientID + ":" + cred.ClientSecret,
			formEncode(cred.ClientID) + ":" + formEncode(cred.ClientSecret),
			url.QueryEscape(cred.ClientID) + ":" + url.QueryEscape(cred.ClientSecret),
		} {
			p.literals = append(p.literals, base64Forms(plain)...)
		}
		r.parts = append(r.parts, p)
	}
	// Longest first: a whole assertion before its signature, so that no part of a
	// longer secret is left behind a shorter one's marker.
	mats := append(keyMaterial(cred.PrivateKey), made...)
	slices.SortStableFunc(mats, func(a, b string) int { return len(b) - len(a) })
	for _, m := range slices.Compact(mats) {
		if utf8.RuneCountInString(m) >= minAnywhere {
			r.parts = append(r.parts, material(m))
		}
	}
	for _, der := range keyDER(cred.PrivateKey) {
		r.parts = append(r.parts, part{literals: []string{string(der)}})
	}
	return r
}

// material is the expression and the base64 forms of one secret value.
func material(m string) part {
	runes := []rune(m)
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
	return part{re: regexp.MustCompile(b.String()), literals: base64Forms(m)}
}

func base64Forms(plain string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(plain)))
	}
	return out
}

// pemLine is the line length of PEM's base64 body (RFC 7468 §2).
const pemLine = 64

// keyMaterial is the text forms of a PEM private key: each line of its body as
// written, and the base64 of every DER encoding of the key, whole and cut in PEM
// lines. A key that does not parse still has its lines redacted.
func keyMaterial(pemText string) []string {
	if pemText == "" {
		return nil
	}
	var out []string
	for line := range strings.Lines(pemText) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") {
			out = append(out, line)
		}
	}
	for _, der := range keyDER(pemText) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			whole := enc.EncodeToString(der)
			out = append(out, whole)
			for i := 0; i < len(whole); i += pemLine {
				out = append(out, whole[i:min(i+pemLine, len(whole))])
			}
		}
	}
	return out
}

// keyDER is every DER encoding of the PEM's private key that a server or a library
// could quote: the blocks as written, PKCS#8, and PKCS#1 (RSA) or SEC1 (EC).
func keyDER(pemText string) [][]byte {
	var out [][]byte
	rest := []byte(pemText)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			out = append(out, b.Bytes)
		}
	}
	key, err := ParsePrivateKey(pemText)
	if err != nil {
		return out
	}
	if der, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
		out = append(out, der)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		out = append(out, x509.MarshalPKCS1PrivateKey(k))
	case *ecdsa.PrivateKey:
		if der, err := x509.MarshalECPrivateKey(k); err == nil {
			out = append(out, der)
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// redact returns s with every form of every secret replaced.
func (r *redactor) redact(s string) string {
	for _, p := range r.parts {
		s = p.redact(s)
	}
	return s
}

func (p *part) redact(s string) string {
	if !p.alone {
		for _, l := range p.literals {
			s = strings.ReplaceAll(s, l, redacted)
		}
		if p.re != nil {
			s = p.re.ReplaceAllLiteralString(s, redacted)
		}
		return s
	}
	for _, l := range p.literals {
		s = replaceAlone(s, literalMatches(s, l))
	}
	if p.re != nil {
		s = replaceAlone(s, p.re.FindAllStringIndex(s, -1))
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
