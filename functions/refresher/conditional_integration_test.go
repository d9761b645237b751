//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/token-refresher/token-refresher/internal/awstest"
	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/pkg/tokens"
)

// TestIntegrationConditionalRotation has a fleet refuse one token at once, in
// both modes: 24 conditional rotations of ecard, from two warm function instances
// and cold ones built for the occasion (and, fanned out, half of them as worker
// batches of a conditional rotation job), against LocalStack's SSM and S3. The
// fake provider counts exactly one token request; every other invocation answers
// skipped with the new token's fingerprint. The new token refused at once is not
// rotated again within MIN_FORCED_ROTATION_INTERVAL; a lease left behind by an
// invocation that died holding it is taken over once its deadline has passed.
func TestIntegrationConditionalRotation(t *testing.T) {
	for _, mode := range []string{"single", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			s := newStack(t)
			ctx := context.Background()
			api := catalog.NewClient(s.cfg)
			bucket := awstest.UniqueName("leases-")
			if _, err := api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"REGISTRY_BUCKET": bucket}
			if mode == "fanout" {
				sq := sqs.NewFromConfig(s.cfg)
				q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName("jobs-") + ".fifo"),
					Attributes: map[string]string{"FifoQueue": "true"}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _, _ = sq.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
				vars["REFRESH_QUEUE_URL"] = aws.ToString(q.QueueUrl)
			}
			getenv := func(k string) string {
				if v, ok := vars[k]; ok {
					return v
				}
				return s.getenv(k)
			}
			e, err := loadEnv(getenv, nil)
			if err != nil {
				t.Fatal(err)
			}
			instance := func() *refresher.Handler {
				return newHandler(s.cfg, e, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
			}
			warm := []*refresher.Handler{instance(), instance()}
			invoke := func(h *refresher.Handler, event []byte) refresher.Outcome {
				c, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				res, _ := h.Handle(c, event)
				for _, o := range res.Results {
					if o.Provider == "ecard" {
						return o
					}
				}
				return refresher.Outcome{Status: "none"}
			}
			if o := invoke(warm[0], []byte(`{"action":"rotate","providers":["ecard"]}`)); o.Status != refresher.StatusRefreshed {
				t.Fatalf("first token: got %+v", o)
			}
			pub, _ := s.published("ecard")
			refused := tokens.Fingerprint(pub.token.AccessToken)
			job := jobDelivery(t, refused, pub.version)
			requests := s.srv.Stats("ecard").Requests

			const n = 24
			outcomes := make([]refresher.Outcome, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h := warm[i%2]
					if i%6 == 5 {
						h = instance() // a cold start
					}
					event := fmt.Appendf(nil, `{"action":"rotate","providers":["ecard"],"if_token":%q}`, refused)
					if mode == "fanout" && i%2 == 1 {
						event = job
					}
					outcomes[i] = invoke(h, event)
				}()
			}
			wg.Wait()
			if got := s.srv.Stats("ecard").Requests - requests; got != 1 {
				t.Fatalf("got %d token requests for one refused token, want 1", got)
			}
			pub, _ = s.published("ecard")
			fresh := tokens.Fingerprint(pub.token.AccessToken)
			refreshed := 0
			for i, o := range outcomes {
				if o.Status == refresher.StatusRefreshed {
					refreshed++
				}
				if o.Status != refresher.StatusRefreshed && o.Status != refresher.StatusSkipped || o.TokenFingerprint != fresh {
					t.Errorf("invocation %d: got %+v, want refreshed or skipped with token_fingerprint %s", i, o, fresh)
				}
			}
			if refreshed != 1 || fresh == refused {
				t.Fatalf("got %d invocations refreshing, token %s after %s; want 1 and a new token", refreshed, fresh, refused)
			}

			// The new token refused at once: not within the interval.
			o := invoke(warm[0], fmt.Appendf(nil, `{"action":"rotate","providers":["ecard"],"if_token":%q}`, fresh))
			if o.Status != refresher.StatusSkipped || !strings.Contains(o.Reason, "next is allowed at") || s.srv.Stats("ecard").Requests-requests != 1 {
				t.Fatalf("refused again at once: got %+v after %d token requests, want skipped until the interval ends, and no request",
					o, s.srv.Stats("ecard").Requests-requests)
			}

			// An invocation died holding the lease: it went stale at that
			// invocation's deadline, so the next conditional rotation takes it over.
			now := time.Now().UTC()
			dead := fmt.Sprintf(`{"provider":"ecard","holder":"dead","taken_at":%q,"until":%q}`,
				now.Add(-10*time.Minute).Format(time.RFC3339), now.Add(-5*time.Minute).Format(time.RFC3339))
			if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("leases/ecard"), Body: strings.NewReader(dead)}); err != nil {
				t.Fatal(err)
			}
			o = invoke(instance(), fmt.Appendf(nil, `{"action":"rotate","providers":["ecard"],"if_token":%q}`, fresh))
			if o.Status != refresher.StatusRefreshed || s.srv.Stats("ecard").Requests-requests != 2 {
				t.Fatalf("after a dead holder: got %+v after %d token requests, want refreshed with one more", o, s.srv.Stats("ecard").Requests-requests)
			}
			out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("leases/ecard")})
			if err != nil {
				t.Fatal(err)
			}
			defer out.Body.Close()
			var rec struct {
				Holder     string    `json:"holder"`
				ReleasedAt time.Time `json:"released_at"`
			}
			if err := json.NewDecoder(out.Body).Decode(&rec); err != nil || rec.Holder == "dead" || rec.ReleasedAt.IsZero() {
				t.Fatalf("lease after the take-over: got %+v (%v), want a new holder's, released", rec, err)
			}
		})
	}
}

// jobDelivery is a worker's batch of one conditional rotation job of ecard, as
// the event source mapping delivers it.
func jobDelivery(t *testing.T, ifToken string, version int64) []byte {
	t.Helper()
	body, _ := json.Marshal(refresher.Job{Provider: "ecard", PlannedAt: time.Now(), Rotate: true, Version: &version, IfToken: ifToken})
	raw, err := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: awstest.UniqueName("m-"), Body: string(body), EventSource: "aws:sqs"}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
