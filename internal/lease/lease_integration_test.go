//go:build integration

package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/token-refresher/token-refresher/internal/awstest"
)

func newBucket(t *testing.T) S3 {
	t.Helper()
	cfg := awstest.Config(t)
	api := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := awstest.UniqueName("lease-")
	if _, err := api.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return S3{API: api, Bucket: bucket}
}

// TestIntegrationS3ConditionalWrites checks what the leases rely on, in the S3
// the tests run against: a create with If-None-Match: * fails when the object
// exists, and a replace with If-Match fails at any other entity tag.
func TestIntegrationS3ConditionalWrites(t *testing.T) {
	ctx := context.Background()
	o := newBucket(t)
	tag, err := o.Put(ctx, "leases/x", []byte(`{"n":1}`), "")
	if err != nil {
		t.Fatalf("first create: %v", err)
	}
	if _, err := o.Put(ctx, "leases/x", []byte(`{"n":2}`), ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
	tag2, err := o.Put(ctx, "leases/x", []byte(`{"n":3}`), tag)
	if err != nil {
		t.Fatalf("replace at the tag read: %v", err)
	}
	if _, err := o.Put(ctx, "leases/x", []byte(`{"n":4}`), tag); !errors.Is(err, ErrConflict) {
		t.Fatalf("replace at a stale tag: got %v, want ErrConflict", err)
	}
	data, got, found, err := o.Get(ctx, "leases/x")
	if err != nil || !found || got != tag2 || string(data) != `{"n":3}` {
		t.Fatalf("got %q at %s (found %t, %v), want {\"n\":3} at %s", data, got, found, err, tag2)
	}
}

// TestIntegrationLeaseOneWinner has many takers at once, through separate
// stores: exactly one takes the lease, whether it is absent or stale.
func TestIntegrationLeaseOneWinner(t *testing.T) {
	o := newBucket(t)
	ctx := context.Background()
	for _, round := range []string{"absent", "stale"} {
		if round == "stale" {
			// A holder that died: its lease ended long ago and was never released.
			dead := `{"provider":"p","holder":"dead","taken_at":"2020-01-01T00:00:00Z","until":"2020-01-01T00:05:00Z"}`
			data, tag, _, err := o.Get(ctx, "leases/p")
			if err != nil || len(data) == 0 {
				t.Fatalf("read the lease: %v", err)
			}
			if _, err := o.Put(ctx, "leases/p", []byte(dead), tag); err != nil {
				t.Fatal(err)
			}
		}
		const takers = 24
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, refused := 0, 0
		for i := range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := &Store{Objects: o, Prefix: "leases/", Interval: time.Minute}
				_, err := s.Take(ctx, "p", "taker-"+strings.Repeat("x", i))
				var r *Refusal
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, ErrConflict) || errors.As(err, &r):
					refused++
				default:
					t.Errorf("take: %v", err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || refused != takers-1 {
			t.Fatalf("%s lease: got %d takers winning and %d refused, want 1 and %d", round, won, refused, takers-1)
		}
	}
}
