// Package store publishes tokens to SSM Parameter Store and reads them back.
//
// Each provider's token is one SecureString parameter holding the JSON of
// tokens.Token, written in one PutParameter so token and expiry never disagree.
// Writes never carry Tags (SSM refuses Tags with Overwrite) and never label
// versions: SSM keeps the last 100 versions of a parameter and deletes the oldest
// on each write, unless that version has a label, in which case every further
// write fails.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// StandardLimit is the largest value of a Standard-tier parameter; larger values
// need the Advanced tier (8 KB), which costs money per parameter and per call.
const StandardLimit = 4096

// AdvancedLimit is the largest value SSM stores at all.
const AdvancedLimit = 8192

// pageSize is GetParametersByPath's largest page.
const pageSize = 10

// API is the part of the SSM client a Store uses.
type API interface {
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// Store reads and writes the published tokens under one path prefix. Set API and
// Prefix; the other fields have usable zero values.
type Store struct {
	// API reads and writes the parameters.
	API API
	// Prefix is the path every token is published under (the registry's
	// ParameterPrefix); leading and trailing slashes do not matter.
	Prefix string
	// KMSKeyID, when not empty, encrypts the SecureStrings with that key instead of
	// the account's alias/aws/ssm.
	KMSKeyID string
	// Log receives warnings (a token that needs the Advanced tier); nothing when nil.
	Log *slog.Logger
}

func (s *Store) prefix() string { return "/" + strings.Trim(s.Prefix, "/") }

func (s *Store) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Published is what Current found: tokens by parameter name, and the parameters
// whose value could not be read as a token.
type Published struct {
	Tokens    map[string]tokens.Token
	Malformed map[string]error
}

// Current reads every published token under the prefix, ten to a call.
func (s *Store) Current(ctx context.Context) (Published, error) {
	out := Published{Tokens: map[string]tokens.Token{}, Malformed: map[string]error{}}
	p := ssm.NewGetParametersByPathPaginator(s.API, &ssm.GetParametersByPathInput{
		Path:           aws.String(s.prefix()),
		Recursive:      aws.Bool(true),
		WithDecryption: aws.Bool(true),
		MaxResults:     aws.Int32(pageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Published{}, fmt.Errorf("read tokens under %s: %w", s.prefix(), err)
		}
		for _, prm := range page.Parameters {
			name := aws.ToString(prm.Name)
			t, err := tokens.Parse([]byte(aws.ToString(prm.Value)))
			if err != nil {
				out.Malformed[name] = fmt.Errorf("parameter %s: %w", name, err)
				continue
			}
			out.Tokens[name] = t
		}
	}
	return out, nil
}

// ErrTooLarge means a token cannot be published because its JSON exceeds what SSM stores.
var ErrTooLarge = errors.New("token too large for SSM")

// Publish writes t to the parameter name as a SecureString, replacing what is there.
func (s *Store) Publish(ctx context.Context, name string, t tokens.Token) error {
	value, err := t.Marshal()
	if err != nil {
		return fmt.Errorf("encode token for %s: %w", name, err)
	}
	if len(value) > AdvancedLimit {
		return fmt.Errorf("publish %s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(value), AdvancedLimit)
	}
	tier := types.ParameterTierStandard
	if len(value) > StandardLimit {
		tier = types.ParameterTierAdvanced
		s.log().WarnContext(ctx, "token needs the Advanced parameter tier", "parameter", name, "bytes", len(value))
	}
	in := &ssm.PutParameterInput{
		Name:        aws.String(name),
		Value:       aws.String(string(value)),
		Type:        types.ParameterTypeSecureString,
		Overwrite:   aws.Bool(true),
		Tier:        tier,
		Description: aws.String("OAuth access token for " + t.Provider + ", published by token-refresher"),
	}
	if s.KMSKeyID != "" {
		in.KeyId = aws.String(s.KMSKeyID)
	}
	_, err = s.API.PutParameter(ctx, in)
	if err != nil && tier == types.ParameterTierStandard && isTierDowngrade(err) {
		// A parameter once Advanced can never be Standard again; keep it Advanced.
		s.log().WarnContext(ctx, "parameter is already in the Advanced tier; writing it as Advanced", "parameter", name)
		in.Tier = types.ParameterTierAdvanced
		_, err = s.API.PutParameter(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return nil
}

// isTierDowngrade recognises SSM's refusal to move an Advanced parameter back to Standard.
func isTierDowngrade(err error) bool {
	var ve interface{ ErrorMessage() string }
	if !errors.As(err, &ve) {
		return false
	}
	msg := strings.ToLower(ve.ErrorMessage())
	return strings.Contains(msg, "advanced") && strings.Contains(msg, "standard")
}
