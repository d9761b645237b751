package oauthtest

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"net/url"
	"strings"
	"unicode/utf8"
)

// SecretForms lists the forms in which a client secret can leak from a token
// request: raw; form-encoded with '+' or %20 for a space; percent-encoded with upper-
// and lower-case hex digits; JSON-escaped as Go and as ASCII-only encoders write it,
// and with '/' escaped;
// HTML-escaped; the base64 of the secret and of "id:secret" in both Basic encodings,
// both alphabets, padded or not; and the first eight characters of the secret, as a
// cut echo leaves them. Tests assert that none of them appears in an output. Forms
// that equal the raw secret (a secret with nothing to escape) are listed once.
func SecretForms(id, secret string) []string {
	forms := valueForms(secret)
	for _, plain := range []string{
		id + ":" + secret,
		url.QueryEscape(id) + ":" + url.QueryEscape(secret),
		strings.ReplaceAll(url.QueryEscape(id), "+", "%20") + ":" + strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
	} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			forms = append(forms, enc.EncodeToString([]byte(plain)))
		}
	}
	return dedupe(forms)
}

// ValueForms lists the forms of a secret value that is never joined to the client
// id (a line of a private key, an assertion, a signature): those of SecretForms but
// the base64 of "id:secret".
func ValueForms(v string) []string { return dedupe(valueForms(v)) }

func valueForms(secret string) []string {
	pct := url.PathEscape(secret)
	form := url.QueryEscape(secret)
	goJSON, _ := json.Marshal(secret)
	forms := []string{
		secret,
		form,
		strings.ReplaceAll(form, "+", "%20"),
		pct,
		lowerHex(pct),
		string(goJSON[1 : len(goJSON)-1]),
		// PHP's json_encode and others escape '/' as well.
		strings.ReplaceAll(string(goJSON[1:len(goJSON)-1]), "/", `\/`),
		asciiJSON(secret),
		html.EscapeString(secret),
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(secret)))
	}
	if utf8.RuneCountInString(secret) > 8 {
		forms = append(forms, string([]rune(secret)[:8]))
	}
	return forms
}

func dedupe(forms []string) []string {
	seen := map[string]bool{}
	out := forms[:0]
	for _, f := range forms {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// asciiJSON escapes s as JSON encoders that emit only ASCII do (Python's json.dumps
// by default): every non-ASCII character as \uXXXX, and '/' left alone.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7E:
			if r > 0xFFFF {
				r -= 0x10000
				b.WriteString(jsonEscape(0xD800 + (r >> 10)))
				b.WriteString(jsonEscape(0xDC00 + (r & 0x3FF)))
				continue
			}
			b.WriteString(jsonEscape(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func jsonEscape(r rune) string {
	const hex = "0123456789abcdef"
	return `\u` + string([]byte{hex[r>>12&0xF], hex[r>>8&0xF], hex[r>>4&0xF], hex[r&0xF]})
}

// lowerHex writes the hex digits of every %XX escape in s in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// KeyForms lists the forms in which a PEM private key can leak: the PEM text as it
// is, JSON-escaped (its line breaks as \n) and in base64; every line of its body,
// and the base64 of its DER in both alphabets, padded or not, each raw, JSON-escaped
// with '/' as \/, and percent-encoded with upper- and lower-case hex digits; a piece
// of 20 characters cut from the middle of a line; and the DER bytes themselves.
func KeyForms(pemText string) []string {
	j, _ := json.Marshal(pemText)
	out := []string{pemText, string(j[1 : len(j)-1]), base64.StdEncoding.EncodeToString([]byte(pemText))}
	text := func(v string) { out = append(out, Base64TextForms(v)...) }
	rest := []byte(pemText)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		whole := base64.StdEncoding.EncodeToString(b.Bytes)
		for i := 0; i < len(whole); i += 64 {
			text(whole[i:min(i+64, len(whole))])
		}
		if len(whole) > 64*3 {
			text(whole[64*2+20 : 64*2+40])
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			text(enc.EncodeToString(b.Bytes))
		}
		out = append(out, string(b.Bytes))
	}
	return dedupe(out)
}

// Base64TextForms lists the forms a base64 text (a key's, an assertion's, a
// signature's) takes in an echo: raw, JSON-escaped with '/' as \/, and
// percent-encoded with upper- and lower-case hex digits.
func Base64TextForms(v string) []string {
	pct := url.QueryEscape(v)
	return dedupe([]string{v, strings.ReplaceAll(v, "/", `\/`), pct, lowerHex(pct)})
}
