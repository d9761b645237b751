package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// objectAPI serves one object (none when data is nil) and fails while err is set.
type objectAPI struct {
	data []byte
	etag string
	err  error
}

func (o *objectAPI) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	switch {
	case o.err != nil:
		return nil, o.err
	case o.data == nil:
		return nil, &types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(o.data)), ETag: aws.String(o.etag), VersionId: aws.String(o.etag)}, nil
}

// recorder is a refresher that records the registry it was built with.
type recorder struct {
	reg *registry.Registry
	err error
}

func (r *recorder) Handle(context.Context, json.RawMessage) (refresher.Result, error) {
	return refresher.Result{Results: []refresher.Outcome{{Provider: r.reg.Providers()[0].Name, Status: refresher.StatusRefreshed}}}, r.err
}

func newLive(api catalog.GetAPI, built *int, runErr error) (*liveRegistry, *bytes.Buffer) {
	var logs bytes.Buffer
	return &liveRegistry{
		reader: &catalog.Reader{API: api, Bucket: "b", Key: catalog.DefaultKey},
		build: func(reg *registry.Registry) handler {
			*built++
			return &recorder{reg: reg, err: runErr}
		},
		log: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, &logs
}

const oneProvider = "providers:\n  - {name: one, token_url: 'https://one.example/token', secret_id: s/one}\n"

// TestLiveRegistryNoProviders: a stack with no registry stored yet, or an empty one,
// runs successfully with an empty result and says so in its log.
func TestLiveRegistryNoProviders(t *testing.T) {
	for _, data := range [][]byte{nil, []byte(""), []byte("providers: []\n")} {
		built := 0
		l, logs := newLive(&objectAPI{data: data, etag: `"e"`}, &built, nil)
		res, err := l.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`))
		if err != nil || res.Results == nil || len(res.Results) != 0 || built != 0 {
			t.Errorf("object %q: got %+v, %v, %d refreshers built; want an empty result, no error, none built", data, res, err, built)
		}
		if !strings.Contains(logs.String(), "no providers configured") {
			t.Errorf("object %q: got log %s, want \"no providers configured\"", data, logs.String())
		}
	}
}

// TestLiveRegistryUnreadableKeepsLast: when the registry cannot be read, the run
// still refreshes with the last one read, then fails; before any read it fails
// with nothing run.
func TestLiveRegistryUnreadableKeepsLast(t *testing.T) {
	api := &objectAPI{data: []byte(oneProvider), etag: `"1"`}
	built := 0
	l, logs := newLive(api, &built, nil)
	ctx := context.Background()
	if _, err := l.Handle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	api.err = errors.New("access denied")
	res, err := l.Handle(ctx, nil)
	if !errors.Is(err, catalog.ErrUnreadable) {
		t.Errorf("got error %v, want ErrUnreadable", err)
	}
	if len(res.Results) != 1 || res.Results[0].Provider != "one" {
		t.Errorf("got results %+v, want the last registry's provider refreshed", res.Results)
	}
	if built != 1 {
		t.Errorf("got %d refreshers built, want 1 (the registry did not change)", built)
	}
	if !strings.Contains(logs.String(), "provider registry unreadable") {
		t.Errorf("got log %s, want the unreadable registry named", logs.String())
	}

	cold, _ := newLive(&objectAPI{err: errors.New("access denied")}, &built, nil)
	if res, err := cold.Handle(ctx, nil); !errors.Is(err, catalog.ErrUnreadable) || len(res.Results) != 0 {
		t.Errorf("cold: got %+v, %v; want no results and ErrUnreadable", res, err)
	}
}

// TestLiveRegistryRebuildsOnChange: the refresher is built once per registry read,
// not once per run.
func TestLiveRegistryRebuildsOnChange(t *testing.T) {
	api := &objectAPI{data: []byte(oneProvider), etag: `"1"`}
	built := 0
	l, _ := newLive(api, &built, nil)
	ctx := context.Background()
	for range 2 {
		if _, err := l.Handle(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	api.data, api.etag = []byte(strings.ReplaceAll(oneProvider, "one", "two")), `"2"`
	res, err := l.Handle(ctx, nil)
	if err != nil || res.Results[0].Provider != "two" || built != 2 {
		t.Errorf("got %+v, %v, %d built; want provider two and 2 built", res, err, built)
	}
}

// TestNoProvidersFunction: a function without a registry succeeds with an empty
// result instead of failing every run.
func TestNoProvidersFunction(t *testing.T) {
	var logs bytes.Buffer
	e, err := loadEnv(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newFunction(aws.Config{}, e, slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard)
	res, err := h.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`))
	if err != nil || res.Results == nil || len(res.Results) != 0 || !strings.Contains(logs.String(), "no providers configured") {
		t.Errorf("got %+v, %v, log %s; want an empty successful run that logs \"no providers configured\"", res, err, logs.String())
	}
}

// TestLiveRegistryBrokenEntry: an entry broken by hand in the stored registry fails
// its own provider with the reason and the invocation, while the others run; a
// worker's batch, which reports per message, is left to do so.
func TestLiveRegistryBrokenEntry(t *testing.T) {
	broken := oneProvider + "  - {name: two, token_url: 'http://two.example/token', secret_id: s/two}\n"
	built := 0
	l, logs := newLive(&objectAPI{data: []byte(broken), etag: `"1"`}, &built, nil)
	res, err := l.Handle(context.Background(), json.RawMessage(`{"action":"refresh"}`))
	if err == nil || !strings.Contains(err.Error(), "two") || !strings.Contains(err.Error(), "token_url") {
		t.Errorf("got error %v, want the invocation failed naming two and its token_url", err)
	}
	if len(res.Results) != 2 || res.Results[0].Provider != "one" || res.Results[0].Status != refresher.StatusRefreshed {
		t.Fatalf("got results %+v, want one refreshed and two failed", res.Results)
	}
	if o := res.Results[1]; o.Provider != "two" || o.Status != refresher.StatusFailed || !strings.Contains(o.Error, "token_url") {
		t.Errorf("got %+v, want two failed with its token_url problem", o)
	}
	if !strings.Contains(logs.String(), `"msg":"provider registry entry cannot be loaded","provider":"two","error":"registry entry cannot be loaded: `) ||
		!strings.Contains(logs.String(), "token_url") {
		t.Errorf("got log %s, want the broken entry named with its token_url problem", logs.String())
	}
	batch := json.RawMessage(`{"Records":[{"messageId":"m","eventSource":"aws:sqs","body":"{}"}]}`)
	if res, err := l.Handle(context.Background(), batch); err != nil || len(res.Results) != 1 {
		t.Errorf("worker batch: got %+v, %v; want the worker's own result, no error", res, err)
	}
}
