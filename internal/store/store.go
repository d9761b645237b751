// Package store publishes tokens to SSM Parameter Store and reads them back.
//
// Each provider's token is one SecureString parameter holding the JSON of
// tokens.Token, written in one PutParameter so token and expiry never disagree.
// Writes never carry Tags (SSM refuses Tags with Overwrite) and never label
// versions: SSM keeps the last 100 versions of a parameter and deletes the oldest
// on each write, unless that version has a label, in which case every further
// write fails.
//
// # Tiers and errors
//
// A token over 4 KB needs the Advanced tier, and a parameter once Advanced stays
// so: a Store writes each parameter with the tier it has, known from its own writes,
// from the tokens it read and from SSM's refusal of a downgrade, in one
// PutParameter from then on (see package ssmput). An error SSM returns for a write
// keeps its code and leaves out its message, which may quote the token.
//
// # Overlapping writers
//
// Two runs that overlap (a manual run beside the schedule, a late retry, a sharded
// deployment) may each decide to replace the same token, and SSM has no
// conditional write. Publish makes them safe after the fact: the caller says which
// version of the parameter its decision was based on; PutParameter returns the new
// version, and when that is not the next one, another writer wrote in between.
// Publish then reads the versions written since (GetParameterHistory) and, when a
// valid token of the same provider that expires later than the one now published
// is among them, writes that one back, and checks again. Every writer does this
// after its own write, so the last writer of any set of overlapping writers has
// seen all their tokens, and the longest-lived valid one stays published: two
// overlapping runs never leave the shorter of two valid tokens published. A
// Publish that overlapped nobody reads no history.
//
// Why runs overlap at all, and how the refresher uses this, is in
// docs/design.md (Overlapping runs).
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"golang.org/x/sync/errgroup"

	"github.com/token-refresher/token-refresher/internal/ssmput"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// StandardLimit is the largest value of a Standard-tier parameter; larger values
// need the Advanced tier (8 KB), which costs money per parameter and per call.
const StandardLimit = ssmput.StandardLimit

// AdvancedLimit is the largest value SSM stores at all.
const AdvancedLimit = ssmput.AdvancedLimit

// pageSize is GetParametersByPath's largest page.
const pageSize = 10

// DefaultReadConcurrency is how many GetParameters calls Tokens makes at once
// when ReadConcurrency is zero.
const DefaultReadConcurrency = 4

// API is the part of the SSM client a Store uses.
type API interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	GetParametersByPath(ctx context.Context, in *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameterHistory(ctx context.Context, in *ssm.GetParameterHistoryInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterHistoryOutput, error)
	DescribeAPI
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
	// ReadConcurrency bounds the calls Tokens makes at once;
	// DefaultReadConcurrency when zero.
	ReadConcurrency int
	// Log receives warnings (a token that needs the Advanced tier); nothing when nil.
	Log *slog.Logger

	// tiers knows which parameters are Advanced, so that each is written with the
	// tier it has.
	tiers ssmput.Tiers
}

func (s *Store) prefix() string { return "/" + strings.Trim(s.Prefix, "/") }

func (s *Store) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Published is what Current found: tokens by parameter name, the parameters whose
// value could not be read as a token, and the version of every parameter read, for
// Publish.
type Published struct {
	Tokens    map[string]tokens.Token
	Malformed map[string]error
	Versions  map[string]int64
}

// Current reads every published token under the prefix, ten to a call. One token
// that cannot be decrypted (written under a KMS key the function may no longer
// use, after TOKEN_KMS_KEY_ID changed) fails only its own provider: the prefix is
// listed again without decryption and the tokens are read by name, so that only
// the parameters SSM cannot decrypt are lost, as Malformed; their providers are
// then due, and their next token is written under the current key.
func (s *Store) Current(ctx context.Context) (Published, error) {
	out := newPublished()
	p := s.paginator(true)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if undecryptable(err) {
				return s.currentByName(ctx, err)
			}
			return Published{}, fmt.Errorf("read tokens under %s: %w", s.prefix(), err)
		}
		out.add(page.Parameters, &s.tiers)
	}
	return out, nil
}

func (s *Store) paginator(decrypt bool) *ssm.GetParametersByPathPaginator {
	return ssm.NewGetParametersByPathPaginator(s.API, &ssm.GetParametersByPathInput{
		Path:           aws.String(s.prefix()),
		Recursive:      aws.Bool(true),
		WithDecryption: aws.Bool(decrypt),
		MaxResults:     aws.Int32(pageSize),
	})
}

// currentByName is Current after a page could not be decrypted: the names under the
// prefix, listed without decryption, read as Tokens reads them.
func (s *Store) currentByName(ctx context.Context, cause error) (Published, error) {
	var names []string
	p := s.paginator(false)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Published{}, fmt.Errorf("read tokens under %s: %w (listing them without decryption: %w)", s.prefix(), cause, err)
		}
		for _, prm := range page.Parameters {
			names = append(names, aws.ToString(prm.Name))
		}
	}
	s.log().WarnContext(ctx, "a published token could not be decrypted; reading the tokens by name", "error_code", errorCode(cause))
	return s.Tokens(ctx, names)
}

// undecryptable says whether err is SSM's refusal to decrypt a SecureString: its
// key is not one the caller may use (InvalidKeyId, or kms:Decrypt denied).
func undecryptable(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "InvalidKeyId", "AccessDeniedException", "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException":
		return true
	}
	return false
}

func newPublished() Published {
	return Published{Tokens: map[string]tokens.Token{}, Malformed: map[string]error{}, Versions: map[string]int64{}}
}

// Tokens reads the named parameters only, ten to a call (GetParameters' limit),
// ReadConcurrency calls at a time: a fanned-out planner's read of a registry too
// large for one invocation, and a worker's of its batch. A name not found has no
// entry. A call that cannot decrypt one of its ten is made again for each, so that
// only the parameter SSM cannot decrypt is Malformed, with its version, so that its
// next token can be published over it.
func (s *Store) Tokens(ctx context.Context, params []string) (Published, error) {
	out := newPublished()
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, cmp.Or(s.ReadConcurrency, DefaultReadConcurrency)))
	for batch := range slices.Chunk(params, pageSize) {
		g.Go(func() error {
			page, err := s.API.GetParameters(ctx, &ssm.GetParametersInput{Names: batch, WithDecryption: aws.Bool(true)})
			if undecryptable(err) {
				for _, name := range batch {
					if err := s.one(ctx, name, out, &mu); err != nil {
						return err
					}
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("read tokens %s, ...: %w", batch[0], err)
			}
			mu.Lock()
			defer mu.Unlock()
			out.add(page.Parameters, &s.tiers)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Published{}, err
	}
	return out, nil
}

// one reads one parameter into out; one that cannot be decrypted is Malformed, with
// the version SSM lists for it.
func (s *Store) one(ctx context.Context, name string, out Published, mu *sync.Mutex) error {
	page, err := s.API.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{name}, WithDecryption: aws.Bool(true)})
	if undecryptable(err) {
		cause := err
		page, err = s.API.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{name}, WithDecryption: aws.Bool(false)})
		if err != nil {
			return fmt.Errorf("read token %s: %w", name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, prm := range page.Parameters {
			out.Versions[name] = prm.Version
			out.Malformed[name] = fmt.Errorf("parameter %s cannot be decrypted (%s): a new token is written under the current key", name, errorCode(cause))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read token %s: %w", name, err)
	}
	mu.Lock()
	defer mu.Unlock()
	out.add(page.Parameters, &s.tiers)
	return nil
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return "error"
}

func (p Published) add(params []types.Parameter, tiers *ssmput.Tiers) {
	for _, prm := range params {
		name := aws.ToString(prm.Name)
		tiers.Saw(name, len(aws.ToString(prm.Value)))
		p.Versions[name] = prm.Version
		t, err := tokens.Parse([]byte(aws.ToString(prm.Value)))
		if err != nil {
			p.Malformed[name] = fmt.Errorf("parameter %s: %w", name, err)
			continue
		}
		p.Tokens[name] = t
	}
}

// ErrTooLarge means a token cannot be published because its JSON exceeds what SSM stores.
var ErrTooLarge = errors.New("token too large for SSM")

// maxRewrites bounds how often Publish writes back a longer-lived token after
// finding that another writer overlapped; each round needs yet another writer.
const maxRewrites = 3

// Write is one token to publish.
type Write struct {
	// Parameter is the SSM parameter.
	Parameter string
	// Token is the token to publish.
	Token tokens.Token
	// After is the version of the parameter the caller's decision was based on, 0
	// when it had none.
	After int64
	// RefreshAt, when not nil, says when a token becomes due, for the parameter's
	// description; it is asked of whichever token ends up written.
	RefreshAt func(tokens.Token) time.Time
}

// Publish writes w.Token to w.Parameter as a SecureString and returns the token
// published when it returns: w.Token, or a valid token of the same provider that
// expires later and that an overlapping writer published meanwhile (see
// "Overlapping writers"). The parameter's description carries the token's Info,
// readable without decrypting it.
func (s *Store) Publish(ctx context.Context, w Write) (tokens.Token, error) {
	name, after := w.Parameter, w.After
	version, err := s.put(ctx, name, w.Token, w.RefreshAt)
	if err != nil {
		return tokens.Token{}, err
	}
	published := w.Token
	for range maxRewrites {
		if version == after+1 {
			return published, nil // nobody wrote in between
		}
		best, err := s.longestSince(ctx, name, after, published)
		if err != nil {
			return tokens.Token{}, fmt.Errorf("publish %s: check overlapping writes: %w", name, err)
		}
		if best.AccessToken == published.AccessToken {
			return published, nil
		}
		s.log().WarnContext(ctx, "an overlapping run published a longer-lived token; publishing it again",
			"parameter", name, "expires_at", best.ExpiresAt, "token_fingerprint", tokens.Fingerprint(best.AccessToken))
		after = version
		if version, err = s.put(ctx, name, best, w.RefreshAt); err != nil {
			return tokens.Token{}, err
		}
		published = best
	}
	return published, nil
}

// longestSince returns, among mine and the valid tokens of the same provider written
// to name after version after, the one that expires last; mine when it ties.
func (s *Store) longestSince(ctx context.Context, name string, after int64, mine tokens.Token) (tokens.Token, error) {
	best := mine
	now := time.Now()
	p := ssm.NewGetParameterHistoryPaginator(s.API, &ssm.GetParameterHistoryInput{
		Name:           aws.String(name),
		WithDecryption: aws.Bool(true),
		MaxResults:     aws.Int32(historyPageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return tokens.Token{}, err
		}
		for _, h := range page.Parameters {
			if h.Version <= after {
				continue
			}
			t, err := tokens.Parse([]byte(aws.ToString(h.Value)))
			if err != nil || t.Provider != mine.Provider || !t.Valid(now) {
				continue
			}
			if t.ExpiresAt.After(best.ExpiresAt) {
				best = t
			}
		}
	}
	return best, nil
}

// historyPageSize is GetParameterHistory's largest page.
const historyPageSize = 50

// put writes t to name and returns the parameter's new version.
func (s *Store) put(ctx context.Context, name string, t tokens.Token, refreshAt func(tokens.Token) time.Time) (int64, error) {
	value, err := t.Marshal()
	if err != nil {
		return 0, fmt.Errorf("encode token for %s: %w", name, err)
	}
	in := &ssm.PutParameterInput{
		Name:        aws.String(name),
		Value:       aws.String(string(value)),
		Type:        types.ParameterTypeSecureString,
		Overwrite:   aws.Bool(true),
		Description: aws.String(describe(t, refreshAt)),
	}
	if s.KMSKeyID != "" {
		in.KeyId = aws.String(s.KMSKeyID)
	}
	// The tier is the one the parameter has; SSM's message on a refusal is left
	// out, since it may quote the token.
	out, err := s.tiers.Put(ctx, s.API, in, s.log())
	if errors.Is(err, ssmput.ErrTooLarge) {
		return 0, fmt.Errorf("publish %s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(value), AdvancedLimit)
	}
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", name, err)
	}
	return out.Version, nil
}
