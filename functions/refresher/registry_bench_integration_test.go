//go:build integration

package main

// BenchmarkRegistry, run by `make bench` (bench.mk, scripts/bench,
// docs/performance.md), measures what the registry in S3 costs at N providers
// (BENCH_REGISTRY_PROVIDERS, default "1000,10000"): the object's size; a put of the
// whole file as tokenctl providers put makes it (catalog.Store: the strict load,
// the read, the conditional write); the strict load alone, offline; and the
// function's two kinds of read (catalog.Reader, as the function holds it): a full
// read, in a cold environment or after a change, and an idle one, in a warm
// environment with the registry unchanged, which S3 answers 304 with no body.
// AWS calls are counted in the SDK, bytes as read from the response bodies.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/oauth"
	"github.com/token-refresher/token-refresher/internal/registry"
)

func BenchmarkRegistry(b *testing.B) {
	cfg := awstest.Config(b)
	for _, n := range registrySizes(b) {
		b.Run(fmt.Sprintf("providers=%d", n), func(b *testing.B) {
			for range b.N {
				benchRegistry(b, cfg, n)
			}
		})
	}
}

func registrySizes(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(envStr("BENCH_REGISTRY_PROVIDERS", "1000,10000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100000 {
			b.Fatalf("BENCH_REGISTRY_PROVIDERS=%q: want a comma-separated list of numbers from 1 to 100000", os.Getenv("BENCH_REGISTRY_PROVIDERS"))
		}
		out = append(out, n)
	}
	return out
}

// registryFile is a registry of n providers, as EntryYAML writes them.
func registryFile(n int) []byte {
	var doc strings.Builder
	doc.WriteString("providers:\n")
	for i := range n {
		name := fmt.Sprintf("p%06d", i)
		u := &url.URL{Scheme: "https", Host: name + ".partner.example", Path: "/oauth/token"}
		doc.WriteString(registry.EntryYAML(name, benchSecretPrefix+name, oauth.Endpoint{TokenURL: u, Scope: "read:reports"}))
	}
	return []byte(doc.String())
}

func benchRegistry(b *testing.B, cfg aws.Config, n int) {
	ctx := context.Background()
	counted, calls := awstest.Counted(cfg)
	api := &bodyCounter{API: catalog.NewClient(counted)}
	bucket := awstest.UniqueName("bench-registry-")
	if _, err := api.API.(*s3.Client).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatal(err)
	}
	if _, err := api.API.(*s3.Client).PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { emptyBucket(b, api.API.(*s3.Client), bucket) })
	file := registryFile(n)
	opts := registry.Options{ParameterPrefix: registry.DefaultParameterPrefix}

	start := time.Now()
	if _, err := registry.Load(strings.NewReader(string(file)), opts); err != nil {
		b.Fatal(err)
	}
	load := time.Since(start)

	calls.Reset()
	st := &catalog.Store{API: api, Bucket: bucket, Key: catalog.DefaultKey, Options: opts}
	start = time.Now()
	ch, err := st.Put(ctx, file)
	put := time.Since(start)
	if err != nil || len(ch.Added) != n {
		b.Fatalf("put: got %d added, %v; want %d", len(ch.Added), err, n)
	}
	putCalls := calls.Total()

	// The function's reads: a cold environment's, then a warm one's.
	r := &catalog.Reader{API: api, Bucket: bucket, Key: catalog.DefaultKey, Options: opts}
	calls.Reset()
	api.reset()
	start = time.Now()
	snap, err := r.Current(ctx)
	full := time.Since(start)
	if err != nil || snap.Registry.Len() != n || len(snap.Rejected) != 0 {
		b.Fatalf("full read: got %d providers, %d rejected, %v; want %d", snap.Registry.Len(), len(snap.Rejected), err, n)
	}
	fullCalls, fullBytes := calls.Total(), api.bytes()

	const idleReads = 5
	calls.Reset()
	api.reset()
	start = time.Now()
	for range idleReads {
		again, err := r.Current(ctx)
		if err != nil || again.ETag != snap.ETag || again.Registry != snap.Registry {
			b.Fatalf("idle read: got version %s, %v; want the registry already read (%s)", again.VersionID, err, snap.VersionID)
		}
	}
	idle := time.Since(start) / idleReads
	idleCalls, idleBytes, notModified := calls.Total(), api.bytes(), api.notModified()
	if notModified != idleReads {
		b.Fatalf("idle reads: %d of %d answered 304, want all", notModified, idleReads)
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("\nbench: registry providers=%d object_bytes=%d put_ms=%.0f put_aws_calls=%d load_validate_ms=%.0f\n",
		n, len(file), ms(put), putCalls, ms(load))
	fmt.Printf("bench: registry providers=%d full_read: aws_calls=%d bytes=%d ms=%.0f (GetObject, body read, entries loaded one by one)\n",
		n, fullCalls, fullBytes, ms(full))
	fmt.Printf("bench: registry providers=%d idle_read: aws_calls=%.1f bytes=%d ms=%.1f (GetObject If-None-Match, answered 304; mean of %d)\n",
		n, float64(idleCalls)/idleReads, idleBytes/idleReads, ms(idle), idleReads)
	b.ReportMetric(float64(len(file)), "object_bytes")
	b.ReportMetric(ms(put), "put_ms")
	b.ReportMetric(ms(load), "load_ms")
	b.ReportMetric(float64(fullCalls), "full_read_calls")
	b.ReportMetric(ms(full), "full_read_ms")
	b.ReportMetric(float64(idleCalls)/idleReads, "idle_read_calls")
	b.ReportMetric(ms(idle), "idle_read_ms")
}

// bodyCounter is the registry's S3 client with the bytes of every GetObject body
// counted as they are read, and its 304 answers.
type bodyCounter struct {
	catalog.API
	mu   sync.Mutex
	n    int64
	n304 int
}

func (c *bodyCounter) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := c.API.GetObject(ctx, in, optFns...)
	if err != nil {
		if re := (*awshttp.ResponseError)(nil); errors.As(err, &re) && re.HTTPStatusCode() == 304 {
			c.mu.Lock()
			c.n304++
			c.mu.Unlock()
		}
		return out, err
	}
	out.Body = &countingBody{ReadCloser: out.Body, c: c}
	return out, nil
}

func (c *bodyCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.n304 = 0, 0
}

func (c *bodyCounter) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.n)
}

func (c *bodyCounter) notModified() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n304
}

type countingBody struct {
	io.ReadCloser
	c *bodyCounter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	b.c.n += int64(n)
	b.c.mu.Unlock()
	return n, err
}

// emptyBucket deletes every version in bucket and the bucket itself.
func emptyBucket(b *testing.B, api *s3.Client, bucket string) {
	ctx := context.Background()
	out, err := api.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		b.Logf("list %s: %v", bucket, err)
		return
	}
	for _, v := range out.Versions {
		if _, err := api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId}); err != nil {
			b.Logf("delete %s: %v", aws.ToString(v.Key), err)
		}
	}
	if _, err := api.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Logf("delete bucket %s: %v", bucket, err)
	}
}
