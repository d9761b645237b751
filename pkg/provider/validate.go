package provider

import (
	"errors"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// validName: [a-z0-9_-]+. The name is a path segment of the SSM parameter and a
// metric dimension, so it is kept to characters that are safe in both.
func validName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// parseTokenURL enforces what DESIGN.md promises about token requests: never plain
// HTTP to a non-loopback host. Messages never echo the URL, because a URL that breaks
// these rules may carry credentials in its user info or query.
func parseTokenURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, detail(ErrInvalid, "not a valid URL: %v", err)
	}
	switch {
	case u.Scheme == "" || u.Opaque != "" || u.Host == "":
		return nil, detail(ErrInvalid, "must be an absolute URL such as https://auth.example.com/oauth/token")
	case u.User != nil:
		return nil, detail(ErrInvalid, "must not contain user info (user:password@); credentials come from secret_id")
	case strings.Contains(s, "#"):
		return nil, detail(ErrInvalid, "must not contain a fragment (#...); it is never sent to the server")
	case u.Hostname() == "":
		return nil, detail(ErrInvalid, "has no host")
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http":
		if IsLoopback(u.Hostname()) {
			return u, nil
		}
		return nil, detail(ErrInvalid, "http is allowed only for a loopback host (127.0.0.0/8, ::1, localhost), not %q; use https", u.Hostname())
	default:
		return nil, detail(ErrInvalid, "scheme %q: must be https", u.Scheme)
	}
}

// IsLoopback reports whether host cannot leave the machine (localhost, 127.0.0.0/8,
// ::1): the only hosts a token request may reach over plain HTTP, for local tests
// and fakes. The registry and the token client both apply it.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkScope applies RFC 6749 §3.3: scope tokens of printable ASCII other than '"'
// and '\', separated by single spaces. The common mistake it catches is a YAML
// literal block (|), which would send newlines to the server.
func checkScope(s string) error {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return detail(ErrInvalid, "%q: separate scopes by single spaces, with none at either end (use >- rather than | for a multi-line scope)", s)
		}
		for _, c := range tok {
			if !(c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E) {
				return detail(ErrInvalid, "%q: %q is not allowed in a scope (RFC 6749 §3.3; use >- rather than | for a multi-line scope)", s, c)
			}
		}
	}
	return nil
}

// hasControl reports ASCII control characters other than tab, which cannot appear in
// a header value and in other fields are almost surely a YAML accident.
func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 && c != '\t' || c == 0x7F {
			return true
		}
	}
	return false
}

// validToken is RFC 9110's token, the syntax of a header name.
func validToken(s string) bool {
	for _, c := range s {
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", c) {
			return false
		}
	}
	return s != ""
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseDuration is time.ParseDuration plus whole days ("30d"), because the lifetimes
// providers document run to a year and "8760h" is easy to get wrong. Days cannot be
// combined with other units; "1d12h" is written "36h".
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok && allDigits(days) {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, detail(ErrInvalid, "duration %q is out of range", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, detail(ErrInvalid, "invalid duration %q (want a Go duration such as 90s, 15m or 12h, or whole days such as 30d)", s)
		}
	}
	if d <= 0 {
		return 0, detail(ErrInvalid, "duration %q must be positive", s)
	}
	return d, nil
}

// checkParameterName applies SSM's rules for hierarchical parameter names, so a bad
// name fails at load time instead of at the first PutParameter.
func checkParameterName(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return detail(ErrInvalid, "%q must start with \"/\"", s)
	case len(s) > 1011:
		return detail(ErrInvalid, "longer than 1011 characters")
	case strings.Contains(s, "//"):
		return detail(ErrInvalid, "%q contains an empty path segment (\"//\")", s)
	case strings.HasSuffix(s, "/"):
		return detail(ErrInvalid, "%q must not end with \"/\"", s)
	case hasPrefixFold(s, "/aws") || hasPrefixFold(s, "/ssm"):
		return detail(ErrInvalid, "%q: names starting with /aws or /ssm are reserved by AWS", s)
	}
	for _, c := range s {
		if !isAlnum(c) && !strings.ContainsRune("_.-/", c) {
			return detail(ErrInvalid, "%q: %q is not allowed (only letters, digits and _.-/)", s, c)
		}
	}
	if strings.Count(s, "/") > 15 {
		return detail(ErrInvalid, "%q is more than 15 levels deep, SSM's limit", s)
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// normalizePrefix applies the default and drops trailing slashes. The root "/" is
// refused: an IAM policy for every parameter in the account is what the prefix exists
// to avoid.
func normalizePrefix(p string) (string, error) {
	if p == "" {
		p = DefaultParameterPrefix
	}
	trimmed := strings.TrimRight(p, "/")
	if trimmed == "" {
		return "", detail(ErrInvalid, "parameter prefix %q: must name a path below the root, such as %s", p, DefaultParameterPrefix)
	}
	if err := checkParameterName(trimmed); err != nil {
		return "", detail(ErrInvalid, "parameter prefix: %v", err)
	}
	return trimmed, nil
}
