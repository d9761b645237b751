// Package secrets reads providers' client credentials from AWS Secrets Manager.
//
// Each secret is a JSON object {"client_id": "...", "client_secret": "..."}; a
// client that authenticates with a key or a certificate has "private_key" (PEM) and
// "certificate" (PEM chain) instead of, or besides, "client_secret". Which fields a
// provider's method needs is the token client's to say, at first use. A
// Source keeps what it read across warm Lambda invocations, so a busy cycle reads
// each secret at most once, and reads many secrets in one BatchGetSecretValue call,
// following its NextToken when the answer comes in pages and reading on its own any
// secret the answer leaves out.
// It reads again when the version may have changed: after Invalidate (a change
// event said so), when a cached entry is older than its TTL, and whenever a caller
// asks for a fresh copy because the provider rejected the cached one.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/secretid"
)

// Version stages Secrets Manager keeps; a rotation moves AWSCURRENT to the new
// version and AWSPREVIOUS to the one before.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

// batchSize is BatchGetSecretValue's limit of secrets per call.
const batchSize = 20

// DefaultTTL bounds how long a cached secret is trusted without a change event.
const DefaultTTL = 15 * time.Minute

// Errors for errors.Is.
var (
	// ErrMalformed means the secret is not a JSON object with a client_id and string
	// credential fields.
	ErrMalformed = errors.New("malformed client credentials secret")
	// ErrNotFound means the secret, or the requested version of it, does not exist.
	ErrNotFound = errors.New("secret not found")
)

// API is the part of the Secrets Manager client a Source uses.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(ctx context.Context, in *secretsmanager.BatchGetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

// Secret is one version of a provider's client credentials.
type Secret struct {
	ClientID     string
	ClientSecret string
	// PrivateKey is a PEM private key, for private_key_jwt and mutual TLS.
	PrivateKey string
	// Certificate is a PEM certificate chain, for mutual TLS and x5t headers.
	Certificate string
	// VersionID is Secrets Manager's id of this version.
	VersionID string
}

// String keeps the client secret out of anything that formats a Secret.
func (s Secret) String() string {
	return fmt.Sprintf("secret{client_id:%q version:%s client_secret:[redacted] private_key:[redacted]}", s.ClientID, s.VersionID)
}

// GoString does the same for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue does the same for log/slog.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", s.ClientID), slog.String("version", s.VersionID))
}

// Source reads and caches secrets. Set API; the other fields have usable zero
// values. It is safe for concurrent use once in use, and must not be copied.
type Source struct {
	// API reads the secrets.
	API API
	// TTL bounds how long a cached secret is used without reading it again;
	// DefaultTTL when zero.
	TTL time.Duration

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	secret Secret
	read   time.Time
}

// A ReadOption changes one read.
type ReadOption func(*readCall)

type readCall struct {
	now func() time.Time
}

// WithClock makes one read tell time by now instead of time.Now: whether a cached
// copy is older than the TTL, and when a copy read now was read, are on that clock.
// It is how a caller that runs on a clock of its own hands that clock over (see the
// refresher's Now).
func WithClock(now func() time.Time) ReadOption {
	return func(c *readCall) {
		if now != nil {
			c.now = now
		}
	}
}

func clock(opts []ReadOption) func() time.Time {
	c := readCall{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	return c.now
}

func (s *Source) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

// Current returns the current version of each secret in ids, from the cache where
// it is fresh and otherwise in as few BatchGetSecretValue calls as possible. Errors
// are per secret: one unreadable secret does not hide the others.
func (s *Source) Current(ctx context.Context, ids []string, opts ...ReadOption) (map[string]Secret, map[string]error) {
	now := clock(opts)
	out := make(map[string]Secret, len(ids))
	errs := map[string]error{}
	var missing []string
	seen := map[string]bool{}
	s.mu.Lock()
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if e, ok := s.cache[id]; ok && now().Sub(e.read) < s.ttl() {
			out[id] = e.secret
			continue
		}
		missing = append(missing, id)
	}
	s.mu.Unlock()

	for start := 0; start < len(missing); start += batchSize {
		chunk := missing[start:min(start+batchSize, len(missing))]
		if len(chunk) == 1 {
			sec, err := s.Fresh(ctx, chunk[0], opts...)
			if err != nil {
				errs[chunk[0]] = err
			} else {
				out[chunk[0]] = sec
			}
			continue
		}
		s.batch(ctx, chunk, out, errs, opts)
	}
	return out, errs
}

// maxPages bounds the pages of one BatchGetSecretValue answer batch follows: an
// answer of batchSize secrets needs at most that many.
const maxPages = batchSize

// batch reads up to batchSize secrets in one call, and the further pages of its
// answer when Secrets Manager says there are more (NextToken). A secret the answer
// does not account for, because a later page failed or never came, is read on its
// own.
func (s *Source) batch(ctx context.Context, ids []string, out map[string]Secret, errs map[string]error, opts []ReadOption) {
	found := map[string]bool{}
	in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}
	for page := 1; ; page++ {
		resp, err := s.API.BatchGetSecretValue(ctx, in)
		if err != nil && page == 1 {
			for _, id := range ids {
				errs[id] = fmt.Errorf("read secret %s: %w", id, classify(err))
			}
			return
		}
		if err != nil {
			break // the rest, one by one
		}
		s.page(ids, resp, found, out, errs, clock(opts))
		if aws.ToString(resp.NextToken) == "" || page == maxPages || len(found) == len(ids) {
			break
		}
		in = &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: resp.NextToken}
	}
	for _, id := range ids {
		if found[id] {
			continue
		}
		if sec, err := s.Fresh(ctx, id, opts...); err != nil {
			errs[id] = err
		} else {
			out[id] = sec
		}
	}
}

// page takes one page of a batch answer.
func (s *Source) page(ids []string, resp *secretsmanager.BatchGetSecretValueOutput, found map[string]bool, out map[string]Secret, errs map[string]error, now func() time.Time) {
	// The answer names secrets by name and ARN, not necessarily as they were asked
	// for; match each back to every id that names it, since two providers may name
	// one secret in two ways (a name and an ARN).
	for _, v := range resp.SecretValues {
		for _, id := range matching(ids, aws.ToString(v.Name), aws.ToString(v.ARN)) {
			found[id] = true
			sec, err := decode(id, aws.ToString(v.SecretString), v.SecretBinary != nil, aws.ToString(v.VersionId))
			if err != nil {
				errs[id] = err
				continue
			}
			s.store(id, sec, now())
			out[id] = sec
		}
	}
	for _, e := range resp.Errors {
		for _, id := range matching(ids, aws.ToString(e.SecretId), aws.ToString(e.SecretId)) {
			if found[id] {
				continue
			}
			found[id] = true
			msg := cut.String(aws.ToString(e.Message), maxMessageLen)
			cause := fmt.Errorf("%s: %s", cut.String(aws.ToString(e.ErrorCode), 64), msg)
			if aws.ToString(e.ErrorCode) == "ResourceNotFoundException" {
				cause = fmt.Errorf("%w: %s", ErrNotFound, msg)
			}
			errs[id] = fmt.Errorf("read secret %s: %w", id, cause)
		}
	}
}

// maxMessageLen bounds a message Secrets Manager returns for one secret of a batch.
const maxMessageLen = 200

// Fresh reads the current version of id, bypassing the cache, and caches it.
func (s *Source) Fresh(ctx context.Context, id string, opts ...ReadOption) (Secret, error) {
	sec, err := s.read(ctx, id, StageCurrent)
	if err != nil {
		return Secret{}, err
	}
	s.store(id, sec, clock(opts)())
	return sec, nil
}

// Previous reads the AWSPREVIOUS version of id: the credentials that worked before
// the last rotation. It returns an error wrapping ErrNotFound when there is none.
func (s *Source) Previous(ctx context.Context, id string) (Secret, error) {
	return s.read(ctx, id, StagePrevious)
}

// Invalidate forgets the cached copy of id, so the next read asks Secrets Manager.
func (s *Source) Invalidate(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, id)
}

// Cached returns the cached version of id without reading, if there is one.
func (s *Source) Cached(id string) (Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[id]
	return e.secret, ok
}

func (s *Source) read(ctx context.Context, id, stage string) (Secret, error) {
	resp, err := s.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(id),
		VersionStage: aws.String(stage),
	})
	if err != nil {
		return Secret{}, fmt.Errorf("read secret %s (%s): %w", id, stage, classify(err))
	}
	return decode(id, aws.ToString(resp.SecretString), resp.SecretBinary != nil, aws.ToString(resp.VersionId))
}

func (s *Source) store(id string, sec Secret, read time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]entry{}
	}
	s.cache[id] = entry{secret: sec, read: read}
}

// matching returns the ids in ids that name the secret with this name or ARN.
// BatchGetSecretValue answers with names and full ARNs, not necessarily as the
// secrets were asked for.
func matching(ids []string, name, arn string) []string {
	var out []string
	for _, id := range ids {
		if id == name || id == arn || secretid.Same(id, arn) || secretid.Same(id, name) {
			out = append(out, id)
		}
	}
	return out
}

// decode parses a secret's value. Its errors describe the shape, never the content.
func decode(id, value string, binary bool, version string) (Secret, error) {
	if value == "" {
		if binary {
			return Secret{}, fmt.Errorf("secret %s: %w: it is binary; store a JSON string", id, ErrMalformed)
		}
		return Secret{}, fmt.Errorf("secret %s: %w: it is empty", id, ErrMalformed)
	}
	var v struct {
		ClientID     *string `json:"client_id"`
		ClientSecret *string `json:"client_secret"`
		PrivateKey   *string `json:"private_key"`
		Certificate  *string `json:"certificate"`
	}
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return Secret{}, fmt.Errorf("secret %s: %w: not a JSON object with string fields client_id and client_secret (or private_key and certificate)", id, ErrMalformed)
	}
	if v.ClientID == nil || *v.ClientID == "" {
		return Secret{}, fmt.Errorf("secret %s: %w: client_id is missing or empty", id, ErrMalformed)
	}
	// A field given empty is a mistake; one left out may be what the method wants.
	for _, f := range []struct {
		name string
		v    *string
	}{{"client_secret", v.ClientSecret}, {"private_key", v.PrivateKey}, {"certificate", v.Certificate}} {
		if f.v != nil && *f.v == "" {
			return Secret{}, fmt.Errorf("secret %s: %w: %s is empty", id, ErrMalformed, f.name)
		}
	}
	return Secret{ClientID: *v.ClientID, ClientSecret: deref(v.ClientSecret), PrivateKey: deref(v.PrivateKey),
		Certificate: deref(v.Certificate), VersionID: version}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// classify maps Secrets Manager's not-found answer to ErrNotFound, keeping the original.
func classify(err error) error {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
