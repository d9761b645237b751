package cut

import (
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"one more", 7, "one mor…"},
		{"", 0, ""},
		{"x", 0, "…"},
		// "é" is two bytes, "日" three: a cut inside one ends before it.
		{"caféx", 4, "caf…"},
		{"日本語", 4, "日…"},
		{"日本語", 2, "…"},
	}
	for _, tt := range tests {
		got := String(tt.s, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("String(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
