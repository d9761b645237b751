package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Handler is the Lambda function: it turns an event into a request, runs it and
// returns the result. Its Handle method is what lambda.Start is given.
type Handler struct {
	// Refresher does the work; it may be nil when Unconfigured is set.
	Refresher *Refresher
	// Unconfigured, when set, says why the deployment has no providers: every
	// invocation then fails with ErrUnconfigured and this reason, rather than
	// reporting providers as failed.
	Unconfigured string
	// Log receives one summary line per invocation; nothing when nil.
	Log *slog.Logger
}

// ErrUnconfigured is returned for every event by a deployment without providers.
var ErrUnconfigured = errors.New("unconfigured deployment")

// Handle runs one invocation. It fails when the event is refused (nothing is then
// changed) and, after every provider was tried, when any provider failed, so that
// Lambda's error metric, retries and on-failure destination see it. A worker's
// batch from the fan-out queue is the exception: its failed jobs are named in the
// result's BatchItemFailures and the invocation succeeds, so that the event source
// mapping sends only those again. When ctx has a deadline, it returns before it
// (see Refresher.Reserve).
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (Result, error) {
	if h.Unconfigured != "" {
		err := fmt.Errorf("%w: %s", ErrUnconfigured, h.Unconfigured)
		h.log(ctx, slog.LevelError, "unconfigured deployment", "error", err.Error())
		return Result{Results: []Outcome{}}, err
	}
	req, err := parseEvent(event, h.secretUsers)
	if err != nil {
		h.log(ctx, slog.LevelError, "event refused", "error", err.Error())
		return Result{Results: []Outcome{}}, err
	}
	res, err := h.Refresher.Run(ctx, req)
	c := res.Counts()
	attrs := []any{"action", string(req.Action), "trigger", string(req.Trigger),
		"refreshed", c[StatusRefreshed], "skipped", c[StatusSkipped], "failed", c[StatusFailed]}
	if c[StatusQueued] > 0 {
		attrs = append(attrs, "queued", c[StatusQueued])
	}
	if c[StatusPending] > 0 {
		attrs = append(attrs, "pending", c[StatusPending])
	}
	if req.Action == actionWork {
		attrs = append(attrs, "jobs", len(req.Jobs), "retried", len(res.BatchItemFailures))
		if err := failures(res.Results); err != nil {
			h.log(ctx, slog.LevelError, "run finished with failures", append(attrs, "error", err.Error())...)
		} else {
			h.log(ctx, slog.LevelInfo, "run finished", attrs...)
		}
		return res.bounded(maxResultBytes), nil
	}
	if err != nil {
		h.log(ctx, slog.LevelError, "run finished with failures", append(attrs, "error", err.Error())...)
	} else {
		h.log(ctx, slog.LevelInfo, "run finished", attrs...)
	}
	return res.bounded(maxResultBytes), err
}

func (h *Handler) secretUsers(secretID string) []string {
	var names []string
	for _, p := range h.Refresher.Providers.BySecret(secretID) {
		names = append(names, p.Name)
	}
	return names
}

func (h *Handler) log(ctx context.Context, level slog.Level, msg string, attrs ...any) {
	if h.Log != nil {
		h.Log.Log(ctx, level, msg, attrs...)
	}
}
