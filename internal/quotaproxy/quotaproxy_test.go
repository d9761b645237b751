package quotaproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// upstream stands in for LocalStack: it answers every call 200 and counts them.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"Version":1,"Tier":"Standard"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func start(t *testing.T, target string, perSecond float64, c *clock) *Proxy {
	t.Helper()
	p, err := Start(target, perSecond, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func call(t *testing.T, url, target string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestProxyThrottlesPutParameterBeyondItsRate(t *testing.T) {
	up, calls := upstream(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := start(t, up.URL, 3, c)

	// A burst of 5 writes in one instant: the bucket of 3 lets 3 through.
	var codes []int
	for range 5 {
		codes = append(codes, call(t, p.URL(), "AmazonSSM.PutParameter").StatusCode)
	}
	want := []int{200, 200, 200, 400, 400}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("status of write %d = %d, want %d (all: %v)", i, codes[i], want[i], codes)
		}
	}
	// Reads and other calls are never throttled.
	for range 10 {
		if got := call(t, p.URL(), "AmazonSSM.GetParameter").StatusCode; got != 200 {
			t.Fatalf("GetParameter status = %d, want 200", got)
		}
	}
	// A third of a second later, one more write is allowed, and only one.
	c.Add(time.Second / 3)
	if got := call(t, p.URL(), "AmazonSSM.PutParameter").StatusCode; got != 200 {
		t.Fatalf("write after 1/3 s: status %d, want 200", got)
	}
	if got := call(t, p.URL(), "AmazonSSM.PutParameter").StatusCode; got != 400 {
		t.Fatalf("second write after 1/3 s: status %d, want 400", got)
	}
	if got, want := p.Allowed(), int64(4); got != want {
		t.Errorf("Allowed = %d, want %d", got, want)
	}
	if got, want := p.Throttled(), int64(3); got != want {
		t.Errorf("Throttled = %d, want %d", got, want)
	}
	if got, want := calls.Load(), int64(14); got != want {
		t.Errorf("upstream calls = %d, want %d (every call but the throttled ones)", got, want)
	}
}

func TestProxyAnswersAsSSMDoes(t *testing.T) {
	up, _ := upstream(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := start(t, up.URL, 1, c)
	call(t, p.URL(), "AmazonSSM.PutParameter") // spends the bucket

	resp := call(t, p.URL(), "AmazonSSM.PutParameter")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if got, want := resp.Header.Get("X-Amzn-ErrorType"), "ThrottlingException"; got != want {
		t.Errorf("x-amzn-ErrorType = %q, want %q", got, want)
	}
	if got, want := string(body), `{"__type":"ThrottlingException","message":"Rate exceeded"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	// The SDK reads it as SSM's throttling: the error code, and a throttle to its retryer.
	client := ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.URL()),
		Credentials:  aws.AnonymousCredentials{},
		Retryer:      aws.NopRetryer{},
	})
	_, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/x"), Value: aws.String("v")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Fatalf("PutParameter error = %v, want a ThrottlingException", err)
	}
	if got := (retry.ThrottleErrorCode{Codes: retry.DefaultThrottleErrorCodes}).IsErrorThrottle(err); got != aws.TrueTernary {
		t.Errorf("the SDK's retryer sees a throttle: %v, want true", got)
	}
}

func TestStartRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name     string
		upstream string
		rate     float64
	}{
		{"relative upstream", "localhost:4566", 3},
		{"zero rate", "http://127.0.0.1:4566", 0},
		{"negative rate", "http://127.0.0.1:4566", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := Start(tt.upstream, tt.rate, Options{}); err == nil {
				p.Close()
				t.Fatalf("Start(%q, %g) = nil error, want one", tt.upstream, tt.rate)
			}
		})
	}
}
