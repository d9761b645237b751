// Package catalog keeps the provider registry of a deployed stack: one YAML file,
// stored as one versioned S3 object, that the function reads at run time and that
// tokenctl changes. A partner is thus added, changed or removed without a rebuild.
//
// The function reads it through Reader, which keeps the last registry it read: a
// warm environment asks S3 with the object's ETag (If-None-Match), so an unchanged
// registry costs one call answered 304 with no body, whatever its size. Writers go
// through Store, which validates the whole file with the registry's strict loader
// before anything is stored and writes only over the version it read (If-Match),
// so two concurrent changes never silently undo each other.
package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/token-refresher/token-refresher/internal/registry"
)

// DefaultKey is the registry object's key in the stack's bucket.
const DefaultKey = "providers.yaml"

// maxObjectSize bounds what is read of the object: a registry larger than this is
// the wrong object, and reading it whole would cost the function its memory.
const maxObjectSize = 64 << 20

// GetAPI is the part of the S3 client that reading the registry needs.
type GetAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// ErrUnreadable says the registry could not be read or loaded: S3 failed, or the
// stored file is no valid registry. Reader then still returns the last registry it
// read, which the caller may keep using, but the run must fail loudly.
var ErrUnreadable = errors.New("provider registry unreadable")

// Snapshot is one version of the stored registry.
type Snapshot struct {
	// Registry is the loaded registry; nil when there are no providers (no object,
	// an empty one, or an empty list).
	Registry *registry.Registry
	// Rejected are the entries of the stored file that do not load (edited by hand
	// since it was stored, say): each fails its own provider, the others are
	// Registry.
	Rejected []registry.Rejected
	// ETag and VersionID identify the object read; both are empty when there is none.
	ETag      string
	VersionID string
}

// Reader reads the registry object for the function, keeping the last good read for
// the life of the (warm) process. It is safe for concurrent use.
type Reader struct {
	API GetAPI
	// Bucket and Key name the registry object.
	Bucket, Key string
	// Options are the deployment's registry settings, applied to every read.
	Options registry.Options

	mu   sync.Mutex
	last Snapshot
	read bool // last holds a read (possibly of "no object")
}

// Current returns the registry as stored now: one GetObject, conditional on the
// ETag of the last read, so an unchanged registry is answered 304 with no body.
//
// When the object cannot be read or its content is no valid registry, it returns
// the last registry it read (the zero Snapshot before the first) together with an
// error wrapping ErrUnreadable: the caller fails the run, and a token is never
// deleted or replaced because of it.
func (r *Reader) Current(ctx context.Context) (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := &s3.GetObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(r.Key)}
	if r.read && r.last.ETag != "" {
		in.IfNoneMatch = aws.String(r.last.ETag)
	}
	out, err := r.API.GetObject(ctx, in)
	switch {
	case err == nil:
	case r.read && r.last.ETag != "" && httpStatus(err) == statusNotModified:
		return r.last, nil
	case isMissing(err):
		r.last, r.read = Snapshot{}, true
		return r.last, nil
	default:
		return r.last, fmt.Errorf("%w: s3://%s/%s: %w", ErrUnreadable, r.Bucket, r.Key, err)
	}
	defer out.Body.Close()
	data, err := readAll(out.Body)
	if err != nil {
		return r.last, fmt.Errorf("%w: s3://%s/%s: %w", ErrUnreadable, r.Bucket, r.Key, err)
	}
	reg, rejected, err := parseEach(data, r.Options)
	if err != nil {
		return r.last, fmt.Errorf("%w: s3://%s/%s (version %s): %w", ErrUnreadable, r.Bucket, r.Key, aws.ToString(out.VersionId), err)
	}
	r.last = Snapshot{Registry: reg, Rejected: rejected, ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}
	r.read = true
	return r.last, nil
}

// parse loads a stored file; no providers is a nil registry, not an error.
func parse(data []byte, opts registry.Options) (*registry.Registry, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	reg, err := registry.Load(bytes.NewReader(data), opts)
	if errors.Is(err, registry.ErrNoProviders) && !hasOtherProblem(err) {
		return nil, nil
	}
	return reg, err
}

// parseEach is parse entry by entry, as the function reads the registry: the
// entries that do not load are returned apart. A registry of rejected entries only
// is an empty one, not nil, so that they are still reported.
func parseEach(data []byte, opts registry.Options) (*registry.Registry, []registry.Rejected, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil
	}
	reg, rejected, err := registry.LoadEach(bytes.NewReader(data), opts)
	if errors.Is(err, registry.ErrNoProviders) && !hasOtherProblem(err) {
		return nil, nil, nil
	}
	return reg, rejected, err
}

// hasOtherProblem says whether a load error holds more than "no providers": a file
// with an empty list and an unknown top-level key is still a broken file.
func hasOtherProblem(err error) bool {
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return false
	}
	for _, e := range multi.Unwrap() {
		if !errors.Is(e, registry.ErrNoProviders) {
			return true
		}
	}
	return false
}

func readAll(body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxObjectSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxObjectSize {
		return nil, fmt.Errorf("object is larger than %d bytes", maxObjectSize)
	}
	return data, nil
}

// The HTTP statuses S3 answers conditional requests with. Named here rather than
// taken from net/http: this package talks to S3 through the SDK only, and no
// package of the registry's speaks HTTP itself.
const (
	statusNotModified        = 304 // GET with If-None-Match: unchanged
	statusNotFound           = 404
	statusConflict           = 409 // a concurrent conditional write won
	statusPreconditionFailed = 412 // PUT with If-Match: changed meanwhile
)

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isMissing says the object does not exist, which is a registry with no providers;
// a missing bucket is a broken deployment, not an empty registry.
func isMissing(err error) bool {
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return true
	}
	var nb *types.NoSuchBucket
	var api smithy.APIError
	if errors.As(err, &nb) || errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return false
	}
	return httpStatus(err) == statusNotFound
}

// NewClient returns the S3 client for the registry. With an endpoint of its own
// (AWS_ENDPOINT_URL: LocalStack, a VPC endpoint) it addresses buckets by path, as
// such endpoints have no per-bucket host names.
func NewClient(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil
	})
}
