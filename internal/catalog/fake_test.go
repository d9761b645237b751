package catalog

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type (
	s3PutInput  = s3.PutObjectInput
	s3PutOutput = s3.PutObjectOutput
	s3Options   = s3.Options
)

// fakeS3 is one versioned object, answering conditional requests as S3 does, and
// counting calls.
type fakeS3 struct {
	mu       sync.Mutex
	data     []byte
	exists   bool
	version  int
	gets     int
	notMod   int
	puts     int
	fail     error // returned by every call while set
	putsFail error // returned by PutObject while set
}

func (f *fakeS3) etag() string {
	sum := md5.Sum(f.data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func statusErr(code int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}},
		Err:      fmt.Errorf("status %d", code),
	}}
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.fail != nil {
		return nil, f.fail
	}
	if !f.exists {
		return nil, &types.NoSuchKey{}
	}
	if in.IfNoneMatch != nil && *in.IfNoneMatch == f.etag() {
		f.notMod++
		return nil, statusErr(http.StatusNotModified)
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(bytes.Clone(f.data))), ETag: aws.String(f.etag()),
		VersionId: aws.String(fmt.Sprint(f.version))}, nil
}

func (f *fakeS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.fail != nil {
		return nil, f.fail
	}
	if f.putsFail != nil {
		return nil, f.putsFail
	}
	if in.IfMatch != nil && (!f.exists || *in.IfMatch != f.etag()) || in.IfNoneMatch != nil && f.exists {
		return nil, statusErr(http.StatusPreconditionFailed)
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.set(data)
	return &s3.PutObjectOutput{ETag: aws.String(f.etag()), VersionId: aws.String(fmt.Sprint(f.version))}, nil
}

// set stores data as a new version, as a hand edit in the console would.
func (f *fakeS3) set(data []byte) {
	f.data, f.exists = data, true
	f.version++
}

func (f *fakeS3) counts() (gets, notModified, puts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.notMod, f.puts
}

var errDown = errors.New("S3 is down")
