package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/token-refresher/token-refresher/internal/refresher"
)

// logsOne is a function that logs one line per invocation.
type logsOne struct{ log *slog.Logger }

func (l logsOne) Handle(ctx context.Context, _ json.RawMessage) (refresher.Result, error) {
	l.log.InfoContext(ctx, "run finished")
	return refresher.Result{}, nil
}

// TestInvocationAttrs: every log line of an invocation carries the function's name,
// whether it is the environment's cold start (the first invocation only), and the
// X-Ray trace id when the invocation is traced.
func TestInvocationAttrs(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(invocationAttrs{Handler: slog.NewJSONHandler(&out, nil), function: "token-refresher-prod-refresher"}).With("run", 1)
	fn := &coldStarts{handler: logsOne{log}}
	//lint:ignore SA1029 the key aws-lambda-go's runtime loop sets
	traced := context.WithValue(context.Background(), "x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	for _, ctx := range []context.Context{traced, context.Background()} {
		if _, err := fn.Handle(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2: %s", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["function_name"] != "token-refresher-prod-refresher" || first["cold_start"] != true || first["xray_trace_id"] != "1-5759e988-bd862e3fe1be46a994272793" {
		t.Errorf("got first line %v, want function_name, cold_start true and the trace's root", first)
	}
	if second["cold_start"] != false || second["xray_trace_id"] != nil || second["run"] != 1.0 {
		t.Errorf("got second line %v, want cold_start false, no trace id, the logger's own attributes kept", second)
	}
}
