// Package queue sends messages to an Amazon SQS queue, ten to a call.
//
// SendMessageBatch answers for each entry: a call can succeed while some of its
// entries fail, and the SDK retries only whole calls. Send therefore retries the
// entries SQS failed through no fault of the sender, and reports, by index, the
// messages it could not send, so that the caller can say which ones were lost.
package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
)

// batchSize is the most entries SendMessageBatch takes.
const batchSize = 10

// DefaultConcurrency is how many SendMessageBatch calls Send makes at once when
// Concurrency is zero.
const DefaultConcurrency = 4

// attempts bounds how often an entry SQS failed on its side is sent.
const attempts = 3

// API is the part of the SQS client a Queue uses.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Message is one message to send.
type Message struct {
	Body string
	// Group is the message group of a FIFO queue: SQS hands out the messages of a
	// group one batch at a time, in order, and the next only after the last was
	// deleted or its visibility timeout passed. Ignored by a standard queue.
	Group string
	// Dedup is the deduplication id of a FIFO queue: SQS drops a message whose id it
	// accepted in the last five minutes. Ignored by a standard queue.
	Dedup string
}

// Queue sends to one SQS queue. Set API and URL.
type Queue struct {
	API API
	// URL is the queue's URL; a FIFO queue's ends in ".fifo".
	URL string
	// Concurrency bounds the SendMessageBatch calls in flight; DefaultConcurrency
	// when zero.
	Concurrency int
}

// ErrNotSent wraps the error of every message Send could not send.
var ErrNotSent = errors.New("message not sent")

// Send sends msgs and returns, by index into msgs, an error for each message that
// was not sent; nil when all were. Messages of different calls may arrive in any
// order: they are sent Concurrency calls at a time.
func (q *Queue) Send(ctx context.Context, msgs []Message) map[int]error {
	fifo := strings.HasSuffix(q.URL, ".fifo")
	var (
		mu     sync.Mutex
		failed = map[int]error{}
	)
	var g errgroup.Group // no goroutine returns an error: each records its own
	limit := q.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	g.SetLimit(limit)
	for start := 0; start < len(msgs); start += batchSize {
		batch := make([]int, 0, batchSize)
		for i := start; i < min(start+batchSize, len(msgs)); i++ {
			batch = append(batch, i)
		}
		g.Go(func() error {
			errs := q.sendBatch(ctx, msgs, batch, fifo)
			mu.Lock()
			defer mu.Unlock()
			for i, err := range errs {
				failed[i] = err
			}
			return nil
		})
	}
	_ = g.Wait() // no goroutine returns an error
	if len(failed) == 0 {
		return nil
	}
	return failed
}

// sendBatch sends the messages at the indices batch in one call, and again those
// SQS failed on its side, with backoff. It returns the errors by index.
func (q *Queue) sendBatch(ctx context.Context, msgs []Message, batch []int, fifo bool) map[int]error {
	errs := map[int]error{}
	pending := batch
	op := func() (struct{}, error) {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL)}
		for _, i := range pending {
			e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(msgs[i].Body)}
			if fifo {
				e.MessageGroupId, e.MessageDeduplicationId = aws.String(msgs[i].Group), aws.String(msgs[i].Dedup)
			}
			in.Entries = append(in.Entries, e)
		}
		out, err := q.API.SendMessageBatch(ctx, in)
		if err != nil {
			for _, i := range pending {
				errs[i] = err
			}
			return struct{}{}, backoff.Permanent(err) // the SDK has retried the call already
		}
		for _, i := range pending {
			delete(errs, i)
		}
		var again []int
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil || !slices.Contains(pending, i) {
				continue // not an entry of this call
			}
			errs[i] = fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if !f.SenderFault {
				again = append(again, i)
			}
		}
		pending = again
		if len(again) > 0 {
			return struct{}{}, errors.New("entries failed on SQS's side")
		}
		return struct{}{}, nil
	}
	_, _ = backoff.Retry(ctx, op, backoff.WithMaxTries(attempts),
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Second}))
	for i, err := range errs {
		errs[i] = fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return errs
}
