package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3API is the part of the S3 client that leases need.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3 keeps leases as objects of one bucket. S3 makes a conditional PutObject
// atomic: of concurrent writes with If-None-Match: * (create) or If-Match: <ETag>
// (replace the version read), exactly one succeeds and the others are answered
// 412 Precondition Failed, or 409 Conflict while a write is in progress.
type S3 struct {
	API    S3API
	Bucket string
}

// maxRecord bounds what is read of a lease object; a record is about 200 bytes.
const maxRecord = 64 << 10

// Get implements Objects.
func (o S3) Get(ctx context.Context, key string) ([]byte, string, bool, error) {
	out, err := o.API.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(key)})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) || status(err) == 404 {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxRecord))
	if err != nil {
		return nil, "", false, err
	}
	return data, aws.ToString(out.ETag), true, nil
}

// Put implements Objects.
func (o S3) Put(ctx context.Context, key string, data []byte, ifMatch string) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("application/json")}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := o.API.PutObject(ctx, in)
	if err != nil {
		// 404: the object was deleted since it was read, which If-Match also refuses.
		if st := status(err); st == 412 || st == 409 || st == 404 && ifMatch != "" {
			return "", fmt.Errorf("%w (HTTP %d)", ErrConflict, st)
		}
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
