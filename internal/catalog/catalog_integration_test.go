//go:build integration

package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/localaws"
)

// newBucket creates a versioned bucket as the stack does and returns a client
// whose calls are counted.
func newBucket(t *testing.T) (*s3.Client, string, *localaws.Calls) {
	t.Helper()
	cfg := awstest.Config(t)
	calls := &localaws.Calls{}
	cfg.APIOptions = append(cfg.APIOptions, calls.Middleware)
	api := NewClient(cfg)
	bucket := awstest.UniqueName("registry-")
	ctx := context.Background()
	if _, err := api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	calls.Reset()
	return api, bucket, calls
}

func versions(t *testing.T, api *s3.Client, bucket string) int {
	t.Helper()
	out, err := api.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(DefaultKey)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Versions)
}

// TestIntegrationRegistryStore: put, get, list and rm against S3, every change a new
// object version; an invalid file and a stale write store nothing.
func TestIntegrationRegistryStore(t *testing.T) {
	api, bucket, _ := newBucket(t)
	s := &Store{API: api, Bucket: bucket, Key: DefaultKey}
	ctx := context.Background()

	if reg, doc, err := s.Load(ctx); err != nil || reg != nil || doc.Exists {
		t.Fatalf("empty bucket: got %v, %+v, %v; want no providers", reg, doc, err)
	}
	if _, err := s.Put(ctx, []byte(file("a", "b"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, []byte(file("c"))); err != nil {
		t.Fatal(err)
	}
	if got := storedNames(t, s); got != "a,b,c" {
		t.Errorf("got %s, want a,b,c", got)
	}
	if entry, err := s.Entry(ctx, "b"); err != nil || !strings.Contains(string(entry), "b.example.com") {
		t.Errorf("get b: got %q, %v, want b's entry (b.example.com) and nil", entry, err)
	}
	if _, err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := storedNames(t, s); got != "b,c" {
		t.Errorf("after rm: got %s, want b,c", got)
	}
	if n := versions(t, api, bucket); n != 3 {
		t.Errorf("got %d object versions, want 3 (one per change)", n)
	}

	if _, err := s.Put(ctx, []byte(file("d")+"    colour: blue\n")); err == nil {
		t.Error("an invalid file: got it accepted, want an error")
	}
	// A change made between this writer's read and its write (another operator).
	stale := &Store{API: &s3Racer{Client: api, bucket: bucket, other: file("z")}, Bucket: bucket, Key: DefaultKey}
	if _, err := stale.Put(ctx, []byte(file("e"))); !errors.Is(err, ErrConflict) {
		t.Errorf("got %v, want ErrConflict", err)
	}
	if got := storedNames(t, s); got != "z" {
		t.Errorf("got %s, want the other writer's z", got)
	}
	if n := versions(t, api, bucket); n != 4 {
		t.Errorf("got %d object versions, want 4: nothing stored by the refused changes", n)
	}
}

// s3Racer writes other over the object just before each PutObject.
type s3Racer struct {
	*s3.Client
	bucket, other string
}

func (r *s3Racer) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if _, err := r.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(DefaultKey),
		Body: strings.NewReader(r.other)}); err != nil {
		return nil, err
	}
	return r.Client.PutObject(ctx, in, o...)
}

// TestIntegrationReaderConditionalGet: S3 answers an unchanged registry 304, so
// each read is one GetObject, and a change is read by the next one.
func TestIntegrationReaderConditionalGet(t *testing.T) {
	api, bucket, calls := newBucket(t)
	r := &Reader{API: api, Bucket: bucket, Key: DefaultKey}
	ctx := context.Background()
	if snap, err := r.Current(ctx); err != nil || snap.Registry != nil {
		t.Fatalf("no object: got %v, %v; want no providers", names(snap), err)
	}
	s := &Store{API: api, Bucket: bucket, Key: DefaultKey}
	if _, err := s.Put(ctx, []byte(file("a"))); err != nil {
		t.Fatal(err)
	}
	first, err := r.Current(ctx)
	if err != nil || strings.Join(names(first), ",") != "a" {
		t.Fatalf("got %v, %v; want a", names(first), err)
	}
	calls.Reset()
	for range 3 {
		snap, err := r.Current(ctx)
		if err != nil || snap.Registry != first.Registry {
			t.Fatalf("unchanged: got %v, %v; want the cached registry", names(snap), err)
		}
	}
	if got := calls.Total(); got != 3 || calls.Count("S3.GetObject") != 3 {
		t.Errorf("got %d calls (%d GetObject) for 3 reads, want 3 GetObject", got, calls.Count("S3.GetObject"))
	}
	if _, err := s.Put(ctx, []byte(file("b"))); err != nil {
		t.Fatal(err)
	}
	if snap, err := r.Current(ctx); err != nil || strings.Join(names(snap), ",") != "a,b" {
		t.Errorf("after a change: got %v, %v; want a,b", names(snap), err)
	}
}
