package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/token-refresher/token-refresher/internal/catalog"
	"github.com/token-refresher/token-refresher/internal/cut"
	"github.com/token-refresher/token-refresher/internal/refresher"
	"github.com/token-refresher/token-refresher/internal/registry"
)

// handler is what Lambda is given: one invocation per call.
type handler interface {
	Handle(ctx context.Context, event json.RawMessage) (refresher.Result, error)
}

// newFunction builds the function as its configuration asks: with the registry read
// from S3 at every invocation, with none, or with the one loaded at start.
func newFunction(awsCfg aws.Config, env env, log *slog.Logger, metricsOut io.Writer) handler {
	switch {
	case env.RegistryBucket != "":
		return &liveRegistry{
			reader: &catalog.Reader{API: catalog.NewClient(awsCfg), Bucket: env.RegistryBucket, Key: env.RegistryKey, Options: env.Options},
			build: func(reg *registry.Registry) handler {
				e := env
				e.Providers = reg
				return newHandler(awsCfg, e, log, metricsOut)
			},
			log: log,
		}
	case env.Unconfigured != "":
		return noProviders{log: log, why: env.Unconfigured}
	}
	return newHandler(awsCfg, env, log, metricsOut)
}

// noProviders is a deployment without providers: every run succeeds with an empty
// result and says so in the log, so a freshly deployed stack is healthy.
type noProviders struct {
	log *slog.Logger
	why string
}

func (n noProviders) Handle(ctx context.Context, _ json.RawMessage) (refresher.Result, error) {
	n.log.InfoContext(ctx, "no providers configured", "reason", n.why)
	return refresher.Result{Results: []refresher.Outcome{}}, nil
}

// liveRegistry runs each invocation with the registry stored in S3 at that moment:
// one conditional GetObject, answered 304 while it is unchanged, so an idle run
// costs that call and the run record's. The refresher is built again only when the
// registry changed; its run record's fingerprint covers the registry's content, so
// a changed registry is never taken for an idle one.
//
// A registry that cannot be read leaves the last one read in use: its providers are
// refreshed as due, and the invocation then fails, so that Lambda's error metric
// and the stack's alarm on it say so. No token is deleted or replaced because of it.
type liveRegistry struct {
	reader *catalog.Reader
	build  func(*registry.Registry) handler
	log    *slog.Logger

	mu  sync.Mutex
	reg *registry.Registry // the registry h was built with
	h   handler
}

func (l *liveRegistry) Handle(ctx context.Context, event json.RawMessage) (refresher.Result, error) {
	snap, readErr := l.reader.Current(ctx)
	if readErr != nil {
		l.log.ErrorContext(ctx, "provider registry unreadable: running with the last one read",
			"error", readErr.Error(), "last_version", snap.VersionID, "providers", providerCount(snap.Registry))
	}
	if snap.Registry == nil {
		if readErr != nil {
			return refresher.Result{Results: []refresher.Outcome{}}, readErr
		}
		l.log.InfoContext(ctx, "no providers configured", "registry_version", snap.VersionID)
		return refresher.Result{Results: []refresher.Outcome{}}, nil
	}
	res := refresher.Result{Results: []refresher.Outcome{}}
	var err error
	if snap.Registry.Len() > 0 {
		res, err = l.handler(snap.Registry).Handle(ctx, event)
	}
	// A worker's batch names its failures itself; the planner's runs and the
	// others report the entries that do not load.
	if len(snap.Rejected) > 0 && !queueBatch(event) {
		rejected := rejectedOutcomes(snap.Rejected)
		res.Results = append(res.Results, rejected...)
		err = errors.Join(err, fmt.Errorf("%d provider registry entries cannot be loaded (the first: %s: %s)", len(rejected), rejected[0].Provider, rejected[0].Error))
		// A scheduled run's result goes nowhere an operator looks: the log names
		// each entry and its reason, the first few of a file broken throughout.
		for _, o := range rejected[:min(len(rejected), maxRejectedLogged)] {
			l.log.ErrorContext(ctx, "provider registry entry cannot be loaded", "provider", o.Provider, "error", o.Error, "registry_version", snap.VersionID)
		}
		l.log.ErrorContext(ctx, "provider registry entries cannot be loaded; the others ran", "rejected", len(rejected), "registry_version", snap.VersionID)
	}
	if readErr != nil {
		return res, errors.Join(readErr, err)
	}
	if err != nil {
		return res, fmt.Errorf("registry version %s: %w", snap.VersionID, err)
	}
	return res, nil
}

// handler returns the refresher for reg, built again only when the registry's
// content changed (a new version with the same content keeps the refresher).
func (l *liveRegistry) handler(reg *registry.Registry) handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reg == nil || l.reg.Fingerprint() != reg.Fingerprint() {
		l.reg, l.h = reg, l.build(reg)
	}
	return l.h
}

func providerCount(reg *registry.Registry) int {
	if reg == nil {
		return 0
	}
	return reg.Len()
}

// maxRejectedLogged bounds the log lines of one run about entries that do not
// load; the result names every one.
const maxRejectedLogged = 10

// rejectedOutcomes fails each registry entry that does not load, with its reason.
func rejectedOutcomes(rejected []registry.Rejected) []refresher.Outcome {
	out := make([]refresher.Outcome, len(rejected))
	for i, r := range rejected {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("providers[%d]", r.Index)
		}
		out[i] = refresher.Outcome{Provider: cut.String(name, 64), Status: refresher.StatusFailed,
			Error: cut.String("registry entry cannot be loaded: "+r.Err.Error(), 1024)}
	}
	return out
}

// queueBatch says whether event is a batch from the fan-out queue.
func queueBatch(event json.RawMessage) bool {
	var ev struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	return json.Unmarshal(event, &ev) == nil && len(ev.Records) > 0 && ev.Records[0].EventSource == "aws:sqs"
}
