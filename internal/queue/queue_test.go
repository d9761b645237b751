package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS records the entries it accepts. fail decides, per body and attempt, how
// an entry fails: "" accepts it, "sender" fails it as the sender's fault, "server"
// as SQS's.
type fakeSQS struct {
	mu       sync.Mutex
	calls    int
	sizes    []int
	accepted map[string]types.SendMessageBatchRequestEntry // by body
	attempts map[string]int
	fail     func(body string, attempt int) string
	callErr  error
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.sizes = append(f.sizes, len(in.Entries))
	if len(in.Entries) > batchSize {
		return nil, errors.New("too many entries")
	}
	if f.callErr != nil {
		return nil, f.callErr
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		f.attempts[body]++
		how := ""
		if f.fail != nil {
			how = f.fail(body, f.attempts[body])
		}
		switch how {
		case "":
			f.accepted[body] = e
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
		default:
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String(how + "Error"), Message: aws.String("no"), SenderFault: how == "sender"})
		}
	}
	return out, nil
}

func messages(n int) []Message {
	var m []Message
	for i := range n {
		m = append(m, Message{Body: "m" + strconv.Itoa(i), Group: "g" + strconv.Itoa(i), Dedup: "d" + strconv.Itoa(i)})
	}
	return m
}

func TestSend(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		url       string
		fail      func(body string, attempt int) string
		callErr   error
		wantCalls int
		wantLost  []int
	}{
		{name: "none", n: 0, wantCalls: 0},
		{name: "ten to a call", n: 25, wantCalls: 3},
		{name: "SQS's failures are sent again", n: 12, wantCalls: 4,
			fail: func(body string, attempt int) string {
				if body == "m3" && attempt == 1 || body == "m11" && attempt == 1 {
					return "server"
				}
				return ""
			}},
		{name: "the sender's failures are not", n: 12, wantCalls: 2, wantLost: []int{3},
			fail: func(body string, _ int) string {
				if body == "m3" {
					return "sender"
				}
				return ""
			}},
		{name: "SQS's failures give up after three attempts", n: 5, wantCalls: attempts, wantLost: []int{4},
			fail: func(body string, _ int) string {
				if body == "m4" {
					return "server"
				}
				return ""
			}},
		{name: "a failed call loses its batch only", n: 15, wantCalls: 2, callErr: errors.New("access denied"),
			wantLost: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeSQS{accepted: map[string]types.SendMessageBatchRequestEntry{}, attempts: map[string]int{}, fail: tt.fail, callErr: tt.callErr}
			q := &Queue{API: api, URL: "https://sqs.example/1/q"}
			msgs := messages(tt.n)
			lost := q.Send(context.Background(), msgs)
			if api.calls != tt.wantCalls {
				t.Errorf("%d calls, want %d (sizes %v)", api.calls, tt.wantCalls, api.sizes)
			}
			if len(lost) != len(tt.wantLost) {
				t.Fatalf("lost %v, want %v", lost, tt.wantLost)
			}
			for _, i := range tt.wantLost {
				if !errors.Is(lost[i], ErrNotSent) {
					t.Errorf("message %d: got %v, want ErrNotSent", i, lost[i])
				}
				if _, ok := api.accepted[msgs[i].Body]; ok {
					t.Errorf("message %d: reported lost and accepted, want one or the other", i)
				}
			}
			for i, m := range msgs {
				if _, ok := api.accepted[m.Body]; !ok && lost[i] == nil {
					t.Errorf("message %d: neither accepted nor reported lost, want one or the other", i)
				}
			}
		})
	}
}

func TestSendFIFOFields(t *testing.T) {
	for _, url := range []string{"https://sqs.example/1/jobs", "https://sqs.example/1/jobs.fifo"} {
		api := &fakeSQS{accepted: map[string]types.SendMessageBatchRequestEntry{}, attempts: map[string]int{}}
		q := &Queue{API: api, URL: url}
		if lost := q.Send(context.Background(), messages(3)); lost != nil {
			t.Fatal(lost)
		}
		fifo := url[len(url)-5:] == ".fifo"
		for i := range 3 {
			e := api.accepted[fmt.Sprintf("m%d", i)]
			if (e.MessageGroupId != nil) != fifo || (e.MessageDeduplicationId != nil) != fifo {
				t.Errorf("%s: got group id %v, dedup id %v; want them set only on a FIFO queue", url, e.MessageGroupId, e.MessageDeduplicationId)
			}
			if fifo && (aws.ToString(e.MessageGroupId) != fmt.Sprintf("g%d", i) || aws.ToString(e.MessageDeduplicationId) != fmt.Sprintf("d%d", i)) {
				t.Errorf("%s: got group id %q, dedup id %q; want %q, %q", url, aws.ToString(e.MessageGroupId), aws.ToString(e.MessageDeduplicationId), fmt.Sprintf("g%d", i), fmt.Sprintf("d%d", i))
			}
		}
	}
}
