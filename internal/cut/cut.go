// Package cut bounds text that comes from outside (a provider's answer, an AWS
// error, an event's field) before it is stored in a result, a log line, an error
// or a record, each of which has a size limit.
package cut

import "unicode/utf8"

// String returns s when it is at most n bytes long, and otherwise its first n bytes
// or fewer, ending at a character boundary, followed by "…" to mark the cut.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
