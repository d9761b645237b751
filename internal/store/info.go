package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// Info is what a token parameter's description says of the token, written with the
// token in the same PutParameter: everything an operator's tool needs without
// reading, let alone decrypting, the token.
type Info struct {
	Provider string
	// IssuedAt is when the token's request was sent: the provider's last success.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RefreshAt is when the token becomes due; zero when unknown.
	RefreshAt time.Time
	// Fingerprint identifies the token (tokens.Fingerprint).
	Fingerprint string
	// PreviousSecret says the token was obtained with the previous client secret.
	PreviousSecret bool
	// Version is the parameter's version and Modified when it was written.
	Version  int64
	Modified time.Time
}

// descriptionPrefix starts every description the store writes.
const descriptionPrefix = "token-refresher:"

// describe writes the description of t: key=value pairs, one line, under SSM's
// 1,024 characters.
func describe(t tokens.Token, refreshAt func(tokens.Token) time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s provider=%s issued_at=%s expires_at=%s", descriptionPrefix, t.Provider,
		t.IssuedAt.UTC().Format(time.RFC3339), t.ExpiresAt.UTC().Format(time.RFC3339))
	if refreshAt != nil {
		if at := refreshAt(t); !at.IsZero() {
			fmt.Fprintf(&b, " refresh_at=%s", at.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintf(&b, " fingerprint=%s", tokens.Fingerprint(t.AccessToken))
	if t.RefusedSecretVersion != "" {
		b.WriteString(" secret=previous")
	}
	return b.String()
}

// parseInfo reads a description describe wrote; ok is false for any other text.
func parseInfo(desc string) (info Info, ok bool) {
	rest, found := strings.CutPrefix(desc, descriptionPrefix)
	if !found {
		return Info{}, false
	}
	for field := range strings.FieldsSeq(rest) {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "provider":
			info.Provider = v
		case "issued_at":
			info.IssuedAt, _ = time.Parse(time.RFC3339, v)
		case "expires_at":
			info.ExpiresAt, _ = time.Parse(time.RFC3339, v)
		case "refresh_at":
			info.RefreshAt, _ = time.Parse(time.RFC3339, v)
		case "fingerprint":
			info.Fingerprint = v
		case "secret":
			info.PreviousSecret = v == "previous"
		}
	}
	return info, info.Provider != "" && !info.ExpiresAt.IsZero()
}

// Describe reads the descriptions of every token parameter under prefix with
// DescribeParameters, fifty to a call: what it needs is not encrypted, so it
// decrypts nothing and reads no token. Parameters whose description a Store did
// not write are left out.
func Describe(ctx context.Context, api DescribeAPI, prefix string) (map[string]Info, error) {
	prefix = "/" + strings.Trim(prefix, "/")
	out := map[string]Info{}
	p := ssm.NewDescribeParametersPaginator(api, &ssm.DescribeParametersInput{
		ParameterFilters: []types.ParameterStringFilter{{
			Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{prefix},
		}},
		MaxResults: aws.Int32(50),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe tokens under %s: %w", prefix, err)
		}
		for _, m := range page.Parameters {
			info, ok := parseInfo(aws.ToString(m.Description))
			if !ok {
				continue
			}
			info.Version = m.Version
			info.Modified = aws.ToTime(m.LastModifiedDate)
			out[aws.ToString(m.Name)] = info
		}
	}
	return out, nil
}

// DescribeAPI is the SSM call Describe needs; the function itself never describes.
type DescribeAPI interface {
	DescribeParameters(ctx context.Context, in *ssm.DescribeParametersInput, optFns ...func(*ssm.Options)) (*ssm.DescribeParametersOutput, error)
}
