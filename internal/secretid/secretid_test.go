package secretid

import (
	"errors"
	"strings"
	"testing"
)

func TestSame(t *testing.T) {
	const acct = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"app/x", "app/x", true},
		{"app/x", "app/y", false},
		{"app/x", acct + "app/x", true},        // name, partial ARN
		{"app/x", acct + "app/x-AbC123", true}, // name, full ARN
		{acct + "app/x", acct + "app/x-AbC123", true},
		{acct + "app/x-AbC123", acct + "app/x-Other1", false}, // recreated secret
		{acct + "app/x", "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/x", false},
		{"app/x-AbC123", "app/x", false}, // a name is never stripped
		{"", "", false},
		{"arn:aws:s3:::bucket", "arn:aws:s3:::bucket", false},
	} {
		if got := Same(tc.a, tc.b); got != tc.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Same(tc.b, tc.a); got != tc.want {
			t.Errorf("Same(%q, %q) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"":          "empty secret name",
		"my secret": "not allowed",
		"arn:aws:secretsmanager:eu-west-1:123456789012:x":     "want arn:PARTITION",
		"arn:aws:ssm:eu-west-1:123456789012:secret:x":         "want secretsmanager",
		"arn:aws:secretsmanager:eu-west-1:1234:secret:x":      "12 digits",
		strings.Repeat("a", 513):                              "longer than 512",
		"arn:aws:secretsmanager":                              "want arn:PARTITION",
		"arn:aws:secretsmanager:eu-west-1:123456789012:key:x": "want secret",
		"arn::secretsmanager:eu-west-1:123456789012:secret:x": "empty partition",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.20q) = %v, want an error containing %q", in, err, want)
		}
	}
	if _, err := Parse(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("Parse(\"\") = %v, want ErrEmpty", err)
	}
}
