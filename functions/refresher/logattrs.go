package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/token-refresher/token-refresher/internal/refresher"
)

// invocationAttrs adds to every log record what Lambda users filter on, by the names
// Powertools for AWS Lambda uses: function_name, cold_start, and xray_trace_id when
// the invocation is traced (lambdacontext's handler adds requestId). No library
// adds the cold start or the trace id to slog records, hence this handler.
type invocationAttrs struct {
	slog.Handler
	function string
}

type coldStartKey struct{}

func (h invocationAttrs) Handle(ctx context.Context, r slog.Record) error {
	if h.function != "" {
		r.AddAttrs(slog.String("function_name", h.function))
	}
	if cold, ok := ctx.Value(coldStartKey{}).(bool); ok {
		r.AddAttrs(slog.Bool("cold_start", cold))
	}
	// The runtime API's Lambda-Runtime-Trace-Id: Root=...;Parent=...;Sampled=...
	if trace, _ := ctx.Value("x-amzn-trace-id").(string); trace != "" {
		for part := range strings.SplitSeq(trace, ";") {
			if root, ok := strings.CutPrefix(part, "Root="); ok {
				r.AddAttrs(slog.String("xray_trace_id", root))
			}
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h invocationAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return invocationAttrs{Handler: h.Handler.WithAttrs(attrs), function: h.function}
}

func (h invocationAttrs) WithGroup(name string) slog.Handler {
	return invocationAttrs{Handler: h.Handler.WithGroup(name), function: h.function}
}

// coldStarts marks the first invocation of an execution environment as its cold
// start, for the log records of that invocation.
type coldStarts struct {
	handler
	warm atomic.Bool
}

func (c *coldStarts) Handle(ctx context.Context, event json.RawMessage) (refresher.Result, error) {
	ctx = context.WithValue(ctx, coldStartKey{}, !c.warm.Swap(true))
	return c.handler.Handle(ctx, event)
}
