package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"

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
	// SecretVersion is the version of the client secret the token was obtained
	// with, RefusedSecretVersion the current one the provider refused, if any (see
	// tokens.Token).
	SecretVersion, RefusedSecretVersion string
	// Complete says the description holds everything a refresh decision needs of
	// the token (written by this version of the store) and, when Metadata read it,
	// that the value is encrypted under the key the store writes with. A
	// description written before lacks the secret versions: its token must be read.
	Complete bool
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
	// Secret version ids are not secrets: they name a version, as an ETag does.
	if v := field(t.SecretVersion); v != "" {
		fmt.Fprintf(&b, " secret_version=%s", v)
	}
	if v := field(t.RefusedSecretVersion); v != "" {
		fmt.Fprintf(&b, " refused_secret_version=%s", v)
	}
	if field(t.SecretVersion) == t.SecretVersion && field(t.RefusedSecretVersion) == t.RefusedSecretVersion {
		fmt.Fprintf(&b, " format=%s", completeFormat)
	}
	return b.String()
}

// completeFormat marks a description that holds everything a refresh decision
// needs; one without it is read as incomplete.
const completeFormat = "2"

// field is v fit for one key=value pair: no spaces or '=', at most 128 bytes;
// anything else is left out (the decision then reads the token).
func field(v string) string {
	if len(v) > 128 || strings.ContainsAny(v, " =\t\n\r") {
		return ""
	}
	return v
}

// parseInfo reads a description describe wrote; ok is false for any other text.
func parseInfo(desc string) (info Info, ok bool) {
	var format string
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
		case "secret_version":
			info.SecretVersion = v
		case "refused_secret_version":
			info.RefusedSecretVersion = v
		case "format":
			format = v
		}
	}
	ok = info.Provider != "" && !info.ExpiresAt.IsZero()
	// A token obtained with the previous secret must name the refused version.
	info.Complete = ok && format == completeFormat && !info.IssuedAt.IsZero() &&
		info.PreviousSecret == (info.RefusedSecretVersion != "")
	return info, ok
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

// DescribeAPI is the SSM call Describe and Metadata need.
type DescribeAPI interface {
	DescribeParameters(ctx context.Context, in *ssm.DescribeParametersInput, optFns ...func(*ssm.Options)) (*ssm.DescribeParametersOutput, error)
}

// describeBatch is the most values one DescribeParameters filter takes, and the
// most parameters a page holds.
const describeBatch = 50

// defaultKey is the key SecureStrings are encrypted under when no KMSKeyID is set.
const defaultKey = "alias/aws/ssm"

// Metadata reads the named parameters' metadata with DescribeParameters, fifty
// names to a call, ReadConcurrency calls at a time: no value is read, so nothing
// is decrypted (a KMS request saved per token). A name not found has no entry; a
// parameter whose description a Store did not write has an entry with its version
// only. An entry is Complete when the description stands for the token (see
// Info) and the value is encrypted under the key the store writes with, so that a
// token under a key since replaced is read, and refreshed under the current one
// if SSM cannot decrypt it.
func (s *Store) Metadata(ctx context.Context, params []string) (map[string]Info, error) {
	out := map[string]Info{}
	var mu sync.Mutex
	want := cmp.Or(s.KMSKeyID, defaultKey)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, cmp.Or(s.ReadConcurrency, DefaultReadConcurrency)))
	for batch := range slices.Chunk(params, describeBatch) {
		g.Go(func() error {
			p := ssm.NewDescribeParametersPaginator(s.API, &ssm.DescribeParametersInput{
				ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Name"), Option: aws.String("Equals"), Values: batch}},
				MaxResults:       aws.Int32(describeBatch),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return fmt.Errorf("describe tokens %s, ...: %w", batch[0], err)
				}
				mu.Lock()
				for _, m := range page.Parameters {
					info, _ := parseInfo(aws.ToString(m.Description))
					key := aws.ToString(m.KeyId)
					info.Complete = info.Complete && m.Type == types.ParameterTypeSecureString && (key == "" || key == want)
					info.Version, info.Modified = m.Version, aws.ToTime(m.LastModifiedDate)
					if m.Tier == types.ParameterTierAdvanced {
						s.tiers.SawAdvanced(aws.ToString(m.Name))
					}
					out[aws.ToString(m.Name)] = info
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
