package oauth

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsePointer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		// RFC 6901 §5.
		{"", nil},
		{"/foo", []string{"foo"}},
		{"/foo/0", []string{"foo", "0"}},
		{"/", []string{""}},
		{"/a~1b", []string{"a/b"}},
		{"/c%d", []string{"c%d"}},
		{"/e^f", []string{"e^f"}},
		{"/g|h", []string{"g|h"}},
		{"/i\\j", []string{"i\\j"}},
		{"/k\"l", []string{"k\"l"}},
		{"/ ", []string{" "}},
		{"/m~0n", []string{"m~n"}},
		// Unescaping is one pass: ~01 is "~1", not "/".
		{"/~01", []string{"~1"}},
		{"/~10", []string{"/0"}},
		{"/data/attributes/access_token", []string{"data", "attributes", "access_token"}},
		{"//", []string{"", ""}},
	} {
		got, err := ParsePointer(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePointer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"foo", "#/foo", "/~", "/a~2", "/~~0", "/a/b~"} {
		if _, err := ParsePointer(bad); !errors.Is(err, ErrInvalidPointer) {
			t.Errorf("ParsePointer(%q) error = %v, want ErrInvalidPointer", bad, err)
		}
	}
}
