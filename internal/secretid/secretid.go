// Package secretid parses the ways a Secrets Manager secret can be named and tells
// whether two of them can name the same secret.
//
// Secrets Manager accepts three spellings of one secret, and both the provider
// registry and CloudTrail events use all of them:
//
//	name          token-refresher/ecard
//	partial ARN   arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-refresher/ecard
//	full ARN      arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-refresher/ecard-AbC123
//
// The full ARN ends in "-" and six random characters that Secrets Manager appends when
// the secret is created, so a secret deleted and created again under the same name
// has a new full ARN.
package secretid

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// ID is a parsed secret name or ARN.
type ID struct {
	// arn is the ARN without its resource, or zero for a name.
	arn arn.ARN
	// name is the name, or for an ARN everything after "secret:" (the name, with the
	// random suffix when the ARN is a full one).
	name string
}

// ErrEmpty is returned by Parse for an empty name.
var ErrEmpty = errors.New("empty secret name")

// Parse accepts a name or an ARN. A name cannot contain ':', so "arn:" can only
// start an ARN. Names follow Secrets Manager's own rule (1 to 512 of A-Z a-z 0-9
// / _ + = . @ -), so a typo fails when configuration is loaded rather than as an
// access-denied or not-found error at the first read.
func Parse(s string) (ID, error) {
	if !strings.HasPrefix(s, "arn:") {
		if err := checkName(s); err != nil {
			return ID{}, err
		}
		return ID{name: s}, nil
	}
	a, err := arn.Parse(s)
	kind, name, ok := strings.Cut(a.Resource, ":")
	switch {
	case err != nil || !ok:
		return ID{}, fmt.Errorf("ARN %q: want arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME", s)
	case a.Partition == "":
		return ID{}, fmt.Errorf("ARN %q: empty partition", s)
	case a.Service != "secretsmanager":
		return ID{}, fmt.Errorf("ARN %q: service is %q, want secretsmanager", s, a.Service)
	case a.Region == "":
		return ID{}, fmt.Errorf("ARN %q: empty region", s)
	case len(a.AccountID) != 12 || strings.Trim(a.AccountID, "0123456789") != "":
		return ID{}, fmt.Errorf("ARN %q: account must be 12 digits", s)
	case kind != "secret":
		return ID{}, fmt.Errorf("ARN %q: resource type is %q, want secret", s, kind)
	}
	if err := checkName(name); err != nil {
		return ID{}, fmt.Errorf("ARN %q: %w", s, err)
	}
	a.Resource = ""
	return ID{arn: a, name: name}, nil
}

func checkName(s string) error {
	if s == "" {
		return ErrEmpty
	}
	if len(s) > 512 {
		return errors.New("secret name longer than 512 characters")
	}
	for _, c := range s {
		if !isAlnum(c) && !strings.ContainsRune("/_+=.@-", c) {
			return fmt.Errorf("secret name %q: %q is not allowed (only letters, digits and /_+=.@-)", s, c)
		}
	}
	return nil
}

// Matches reports whether a and b can name the same secret.
//
//   - Two names match when equal.
//   - A name matches an ARN whose resource is that name (partial ARN) or that name
//     plus a random suffix (full ARN). A name carries no account or region, so it
//     matches an ARN in any; the function only receives its own account's events.
//   - Two ARNs match when partition, region and account are equal and the resources
//     are equal, or one is the other plus a random suffix (a partial and a full ARN).
//     Two full ARNs with different suffixes are different secrets (one was deleted
//     and recreated) and do not match.
//
// A partial ARN whose name happens to end in "-" and six alphanumerics cannot be told
// from a full ARN (Secrets Manager documents the same ambiguity), so both readings
// match: ".../secret:app-abc123" matches the names "app" and "app-abc123". Matching
// one secret too many only costs an unneeded token request; missing one would leave
// a token minted with credentials that were just rotated away.
func (a ID) Matches(b ID) bool {
	aARN, bARN := a.arn != (arn.ARN{}), b.arn != (arn.ARN{})
	if aARN && bARN && a.arn != b.arn {
		return false
	}
	return a.name == b.name ||
		aARN && trimSuffix(a.name) == b.name ||
		bARN && a.name == trimSuffix(b.name)
}

// Same reports whether a and b, each a secret name, partial ARN or full ARN, can
// name the same secret, by the rules of Matches. Unparsable input matches nothing.
func Same(a, b string) bool {
	ia, err := Parse(a)
	if err != nil {
		return false
	}
	ib, err := Parse(b)
	return err == nil && ia.Matches(ib)
}

// trimSuffix removes the "-XXXXXX" that Secrets Manager appends in full ARNs. It
// returns "" when there is none, which equals no valid secret name, so a missing
// suffix never produces a match by itself.
func trimSuffix(resource string) string {
	n := len(resource) - 7
	if n < 1 || resource[n] != '-' {
		return ""
	}
	for _, c := range resource[n+1:] {
		if !isAlnum(c) {
			return ""
		}
	}
	return resource[:n]
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
