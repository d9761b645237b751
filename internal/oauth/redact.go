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
// The private key and what was made for one call (each assertion, a signature a
// Signer returned) are long base64 texts, for which one expression per character
// would cost the length of the text times theirs. They are found instead as runs of
// base64 characters in the text (JSON's \/ and the percent escapes of + / = read
// as what they stand for) that hold any piece of windowLen characters of the
// base64 of the key's DER encodings (as the PEM holds it, PKCS#8, and PKCS#1 or
// SEC1, in both alphabets), of the PEM text itself, or of a signature: such a run
// is replaced whole. So the PEM, each of its lines, any cut piece of them longer
// than windowLen, and the assertion's signature go; the assertion and the DER bytes
// are also replaced as they are.
//
// It is hand-written because no library redacts a value in its encodings; it is a
// regular expression built from the client secret (RE2: linear in the text
// whatever the secret), literal strings and a set of windows, built only when an
// error is reported.
type redactor struct {
	parts []part
	// literals are replaced as they are: whole assertions, DER bytes.
	literals []string
	// windows holds every windowLen-character piece of the base64 texts to remove.
	windows map[string]bool
}

// windowLen is the shortest piece of a key's or a signature's base64 that is found
// on its own: 96 bits, which no other text holds by chance.
const windowLen = 16

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
	r.windows = map[string]bool{}
	for _, b := range keyBlocks(cred.PrivateKey) {
		r.literals = append(r.literals, string(b.Bytes))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			r.window(enc.EncodeToString(b.Bytes))
			// The PEM text in base64, as some stores keep it.
			r.window(enc.EncodeToString(pem.EncodeToMemory(b)))
		}
	}
	if cred.PrivateKey != "" {
		r.window(base64.StdEncoding.EncodeToString([]byte(cred.PrivateKey)))
		for line := range strings.Lines(cred.PrivateKey) {
			// The lines as written, should the key not parse.
			if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") {
				r.window(line)
			}
		}
	}
	for _, m := range made {
		if i := strings.LastIndexByte(m, '.'); i >= 0 {
			// An assertion: the whole of it, and its signature as a window; its
			// header and claims alone are no credential, and every JWT's header
			// starts alike.
			r.literals = append(r.literals, m)
			m = m[i+1:]
		}
		r.window(m)
	}
	slices.SortFunc(r.literals, func(a, b string) int { return len(b) - len(a) })
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

// window adds every windowLen-character piece of the base64 text t.
func (r *redactor) window(t string) {
	t = strings.TrimRight(t, "=")
	if len(t) < windowLen {
		if len(t) >= minAnywhere {
			r.literals = append(r.literals, t)
		}
		return
	}
	for i := 0; i+windowLen <= len(t); i++ {
		r.windows[t[i:i+windowLen]] = true
	}
}

// keyBlocks is every PEM block of the private key that a server or a library
// could quote: the blocks as written, PKCS#8, and PKCS#1 (RSA) or SEC1 (EC).
func keyBlocks(pemText string) []*pem.Block {
	var out []*pem.Block
	rest := []byte(pemText)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			out = append(out, &pem.Block{Type: b.Type, Bytes: b.Bytes})
		}
	}
	key, err := ParsePrivateKey(pemText)
	if err != nil {
		return out
	}
	if der, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
		out = append(out, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		out = append(out, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		if der, err := x509.MarshalECPrivateKey(k); err == nil {
			out = append(out, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		}
	}
	return slices.CompactFunc(out, func(a, b *pem.Block) bool { return a.Type == b.Type && bytes.Equal(a.Bytes, b.Bytes) })
}

// redact returns s with every form of every secret replaced.
func (r *redactor) redact(s string) string {
	for _, l := range r.literals {
		s = strings.ReplaceAll(s, l, redacted)
	}
	if len(r.windows) > 0 {
		s = r.redactRuns(s)
	}
	for _, p := range r.parts {
		s = p.redact(s)
	}
	return s
}

// redactRuns replaces every run of base64 characters that holds a window.
func (r *redactor) redactRuns(s string) string {
	var b strings.Builder
	last := 0
	norm := make([]byte, 0, 256)
	for i := 0; i < len(s); {
		start := i
		norm = norm[:0]
	run:
		for i < len(s) {
			switch c := s[i]; {
			case isBase64(c):
				norm = append(norm, c)
				i++
			case c == '\\' && i+1 < len(s) && s[i+1] == '/':
				norm = append(norm, '/')
				i += 2
			case c == '%' && i+2 < len(s) && percentBase64(s[i+1:i+3]) != 0:
				norm = append(norm, percentBase64(s[i+1:i+3]))
				i += 3
			default:
				break run
			}
		}
		if i == start {
			i++
			continue
		}
		if r.holdsWindow(norm) {
			b.WriteString(s[last:start])
			b.WriteString(redacted)
			last = i
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func (r *redactor) holdsWindow(run []byte) bool {
	for i := 0; i+windowLen <= len(run); i++ {
		if r.windows[string(run[i:i+windowLen])] {
			return true
		}
	}
	return false
}

// isBase64 reports whether c is a character of either base64 alphabet. '=' ends a
// run rather than continuing it, so that "client_assertion=" stays apart from
// what follows; padding is no secret.
func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

// percentBase64 is the base64 symbol that the hex digits of a percent escape
// stand for, or 0.
func percentBase64(hex string) byte {
	switch strings.ToUpper(hex) {
	case "2B":
		return '+'
	case "2F":
		return '/'
	}
	return 0
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
